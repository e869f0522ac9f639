"""Restore a catalogued database dump, check it against the catalogue, and the restore drill.

A restore first downloads the object into a private temporary file, counting and hashing it:
a dump whose size or sha256 differs from the catalogue's is refused before psql sees a byte of
it (a plain dump is a psql script, and ``\\!`` runs shell commands). Only the checked file is then
fed through gunzip into ``psql --single-transaction``: it lands whole or not at all. The
restored database is checked table by table (row counts and primary-key checksums taken in the
dump's own snapshot) from the RAG role, which also proves the restored objects belong to it.

Creating a database and the extensions a dump needs (``vector`` is not a trusted extension)
takes a privileged role, so the restore runs with an *admin* connection: a superuser, or a role
that may create databases and the extensions. The restored objects keep their owner (the RAG
role), as written in the dump. The live database is never restored in place: the dump goes into
a staging database, which is checked and migrated, and only then swapped in by renaming (the
previous database is kept, renamed, for a rollback). Without the explicit confirmation, the
live database is refused. A database that is kept gets a fresh cache epoch
(:mod:`rag.adapters.postgres.cache_epoch`) before it goes live, so no cache level of any API
process serves a result cached before the restore.

:mod:`rag.operations.restore_plan` checks the request before anything is touched,
:mod:`rag.operations.restore_checks` holds the checks of the dump and of the restored database,
and this module's :class:`Restorer` runs the steps in order.
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psycopg

from rag.adapters.objectstore import BlobStore
from rag.adapters.postgres import cache_epoch, databases, tools
from rag.adapters.postgres.backups import BackupRecord, copy_catalogue
from rag.adapters.postgres.housekeeping import vacuum_analyze
from rag.core.errors import FailedPrecondition
from rag.operations.restore_checks import fetch_checked, sample_search, verify
from rag.operations.restore_plan import RestorePlan
from rag.operations.streams import exit_and_stderr
from rag.settings import Settings

log = logging.getLogger(__name__)

ADMIN_HINT = databases.ADMIN_HINT


@dataclass
class RestoreReport:
    object_key: str
    target: str
    drill: bool
    seconds: dict[str, float] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    search: list[dict[str, Any]] = field(default_factory=list)
    previous_database: str | None = None

    @property
    def recovery_seconds(self) -> float:
        return sum(v for k, v in self.seconds.items() if k != "drop")

    def summary(self) -> dict[str, Any]:
        return {
            "object_key": self.object_key,
            "target": self.target,
            "drill": self.drill,
            "recovery_seconds": round(self.recovery_seconds, 3),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "tables": self.tables,
            "search": self.search,
            "previous_database": self.previous_database,
        }


class Restorer:
    """Restores with the admin connection; checks with the RAG role (``DATABASE_URL``)."""

    def __init__(
        self,
        settings: Settings,
        blobs: BlobStore,
        *,
        admin_dsn: str | None = None,
        maintenance_work_mem: str = "1GB",
        work_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.blobs = blobs
        # Without an admin connection, the RAG role itself (it needs CREATEDB and the extensions).
        self.admin_dsn = admin_dsn or tools.with_database(settings.DATABASE_URL, "postgres")
        self.owner = tools.role_name(settings.DATABASE_URL)
        self.maintenance_work_mem = maintenance_work_mem
        # Where the dump is checked before it is restored (default: the system's temporary folder).
        self.work_dir = work_dir

    # -- databases -----------------------------------------------------------------------------
    def _admin(self) -> psycopg.Connection[Any]:
        return databases.admin_connect(self.admin_dsn)

    def app_dsn(self, database: str) -> str:
        return tools.with_database(self.settings.DATABASE_URL, database)

    def recreate(self, name: str) -> None:
        """An empty ``name`` owned by the RAG role; an existing one must already be the RAG role's."""
        with self._admin() as conn:
            databases.recreate(conn, name, self.owner)

    def drop(self, name: str) -> None:
        with self._admin() as conn:
            databases.drop(conn, name)

    # -- the restore ---------------------------------------------------------------------------
    def load(self, backup: BackupRecord, database: str) -> None:
        """Check the dump (:func:`~rag.operations.restore_checks.fetch_checked`), then restore
        that very copy into ``database`` in one transaction."""
        # An unnamed file (mode 0600, unlinked): nobody can swap it between check and restore.
        with tempfile.TemporaryFile(dir=self.work_dir, prefix="rag-restore-") as dump:
            fetch_checked(self.blobs, backup, dump, work_dir=self.work_dir)
            dump.seek(0)
            self._psql(backup, database, dump)

    def _psql(self, backup: BackupRecord, database: str, dump: IO[bytes]) -> None:
        with self._admin() as conn:
            major = tools.server_major(conn)
        psql = tools.find_tool("psql", min_major=major)
        conninfo, env = tools.client_args(tools.with_database(self.admin_dsn, database))
        # The HNSW rebuild dominates a restore; it is ~2.5x faster with memory to spare.
        env["PGOPTIONS"] = f"-c maintenance_work_mem={self.maintenance_work_mem}"
        argv = [
            str(psql),
            "--no-psqlrc",
            "--quiet",
            "--no-password",
            "--set=ON_ERROR_STOP=1",
            "--single-transaction",
            f"--dbname={conninfo}",
        ]
        inflate = zlib.decompressobj(wbits=31)  # gzip
        with (
            tempfile.TemporaryFile() as stderr,
            subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=env
            ) as proc,
        ):
            assert proc.stdin is not None
            try:
                while chunk := dump.read(1 << 20):
                    proc.stdin.write(inflate.decompress(chunk))
                proc.stdin.write(inflate.flush())
                proc.stdin.close()
            except BrokenPipeError:
                pass  # psql stopped at an error; its exit status and stderr say which
            except BaseException:
                proc.kill()
                raise
            code, message = exit_and_stderr(proc, stderr)
            if code != 0:
                hint = (
                    f"; {ADMIN_HINT}" if "permission denied" in message or "must be owner" in message else ""
                )
                raise FailedPrecondition(
                    f"psql could not restore {backup.object_key} into {database!r} "
                    f"(exit {code}): {message}{hint}"
                )

    def _upgrade(self, database: str) -> None:
        from rag import migrations

        migrations.upgrade(self.app_dsn(database))

    def _carry_catalogue(self, live: str, staging: str) -> None:
        """The live catalogue (which knows the backups taken since this dump) into ``staging``."""
        with (
            psycopg.connect(self.app_dsn(live), connect_timeout=10) as src,
            psycopg.connect(self.app_dsn(staging), connect_timeout=10) as dst,
        ):
            copy_catalogue(src, dst)

    def swap_into_live(self, staging: str, live: str) -> str:
        """Rename ``live`` aside and ``staging`` into its place; returns the previous database's name."""
        previous = f"{live}_before_restore_{datetime.now(UTC):%Y%m%d_%H%M%S}"[:63]
        with self._admin() as conn:
            databases.swap(conn, staging=staging, live=live, previous=previous)
        log.warning("live database %s replaced; the previous one is kept as %s", live, previous)
        return previous

    def run(self, plan: RestorePlan, *, samples: int = 3) -> RestoreReport:
        """Restore ``plan.backup`` into ``plan.target`` and check it; a drill drops it afterwards."""
        report = RestoreReport(plan.backup.object_key, plan.target, plan.drill)
        database = f"{plan.live}_restoring"[:63] if plan.overwrites_live else plan.target

        def timed(step: str, began: float) -> None:
            report.seconds[step] = time.monotonic() - began

        began = time.monotonic()
        self.recreate(database)
        try:
            self.load(plan.backup, database)
            timed("restore", began)
            began = time.monotonic()
            # A restored database has no planner statistics and no visibility map: without them
            # the first searches pick poor plans (the BM25 postings want index-only scans).
            vacuum_analyze(self.app_dsn(database))
            timed("analyze", began)
            began = time.monotonic()
            report.tables = verify(self.app_dsn(database), plan.backup, database)
            timed("verify", began)
            began = time.monotonic()
            report.search = sample_search(self.settings, self.app_dsn(database), database, samples=samples)
            timed("search", began)
            if plan.overwrites_live:
                began = time.monotonic()
                self._upgrade(database)
                self._carry_catalogue(plan.live, database)
                # Before it goes live: the old epoch would find what was cached before.
                cache_epoch.renew(self.app_dsn(database))
                report.previous_database = self.swap_into_live(database, plan.live)
                timed("swap", began)
            elif not plan.drill:
                cache_epoch.renew(self.app_dsn(database))  # in case it is ever made live
        except BaseException:
            if plan.drill or plan.overwrites_live:
                try:
                    self.drop(database)
                except Exception:  # the restore's own error is the one to report
                    log.exception("could not drop %s after a failed restore", database)
            raise
        if plan.drill:
            began = time.monotonic()
            self.drop(database)
            timed("drop", began)
        log.info(
            "restored %s into %s in %.1fs (recovery time; %s)%s",
            plan.backup.object_key,
            plan.target,
            report.recovery_seconds,
            ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items()),
            "; drill: scratch database dropped" if plan.drill else "",
        )
        return report
