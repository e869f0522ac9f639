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
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
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
from rag.adapters.postgres.backups import (
    DATABASE,
    BackupCatalogue,
    BackupRecord,
    TableState,
    compare_inventories,
    copy_catalogue,
    table_inventory,
)
from rag.adapters.postgres.housekeeping import vacuum_analyze
from rag.core.errors import FailedPrecondition, InvalidInput, NotFound
from rag.settings import Settings

log = logging.getLogger(__name__)

SCRATCH_DATABASE = "rag_restore_drill"
DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RESERVED = frozenset({"postgres", "template0", "template1"})
ADMIN_HINT = databases.ADMIN_HINT


@dataclass(frozen=True)
class RestorePlan:
    backup: BackupRecord
    target: str
    live: str
    drill: bool

    @property
    def overwrites_live(self) -> bool:
        return self.target == self.live


def plan_restore(
    settings: Settings,
    catalogue: BackupCatalogue,
    *,
    object_key: str = "",
    target: str = SCRATCH_DATABASE,
    confirm_overwrite_live: bool = False,
    drill: bool = True,
) -> RestorePlan:
    """Check the request before anything is touched; the backup defaults to the latest good one."""
    live = tools.database_name(settings.DATABASE_URL)
    if not DATABASE_NAME.match(target) or target in RESERVED:
        raise InvalidInput(
            f"{target!r} is not a database to restore into (lowercase letters, digits and _, "
            "at most 63, not postgres or a template)",
            field="target_database",
        )
    if target == live and drill:
        raise InvalidInput(
            f"a drill restores into a scratch database, never into the live database {live!r}",
            field="target_database",
        )
    if target == live and not confirm_overwrite_live:
        raise FailedPrecondition(
            f"refusing to restore over the live database {live!r}: set confirm_overwrite_live=true "
            "to replace it (it is kept, renamed, for a rollback), or restore into a scratch database"
        )
    bucket = settings.S3_BUCKET_BACKUPS
    if object_key:
        backup = catalogue.get(bucket, object_key)
        if backup.kind != DATABASE or backup.status != "succeeded":
            raise FailedPrecondition(
                f"backup {object_key} is a {backup.kind} backup in status {backup.status}; "
                "only a succeeded database backup can be restored"
            )
    else:
        latest = catalogue.latest(DATABASE, bucket)
        if latest is None:
            raise NotFound(f"no succeeded database backup in s3://{bucket}: run backup_database first")
        backup = latest
    return RestorePlan(backup=backup, target=target, live=live, drill=drill)


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
    def fetch_checked(self, backup: BackupRecord, into: IO[bytes]) -> None:
        """Download the dump into ``into``, counting and hashing it; refuse it unless its size
        and sha256 are the catalogue's. Nothing of it reaches psql before this returns."""
        key = backup.object_key
        if not backup.sha256 or backup.size_bytes is None:
            raise FailedPrecondition(
                f"backup {key} has no recorded sha256 and size, so it cannot be checked; "
                "restore a backup catalogued by backup_database"
            )
        free = shutil.disk_usage(self.work_dir or tempfile.gettempdir()).free
        if free < backup.size_bytes:
            raise FailedPrecondition(
                f"backup {key} needs {backup.size_bytes} bytes of temporary space to be checked, "
                f"{free} are free in {self.work_dir or tempfile.gettempdir()}: free some, or set TMPDIR"
            )
        digest, size = hashlib.sha256(), 0
        body = self.blobs.open_stream(backup.bucket, key)
        try:
            while chunk := body.read(1 << 20):
                size += len(chunk)
                if size > backup.size_bytes:
                    break
                digest.update(chunk)
                into.write(chunk)
        finally:
            body.close()
        if size != backup.size_bytes:
            found = "more than" if size > backup.size_bytes else f"{size} bytes, not"
            raise FailedPrecondition(
                f"backup {key} is {found} the {backup.size_bytes} bytes the catalogue says: "
                "the object is corrupt or was replaced; nothing was restored"
            )
        if digest.hexdigest() != backup.sha256:
            raise FailedPrecondition(
                f"backup {key} has sha256 {digest.hexdigest()}, the catalogue says {backup.sha256}: "
                "the object is corrupt or was replaced; nothing was restored"
            )
        into.flush()

    def load(self, backup: BackupRecord, database: str) -> None:
        """Check the dump (:meth:`fetch_checked`), then restore that very copy into ``database``
        in one transaction."""
        # An unnamed file (mode 0600, unlinked): nobody can swap it between check and restore.
        with tempfile.TemporaryFile(dir=self.work_dir, prefix="rag-restore-") as dump:
            self.fetch_checked(backup, dump)
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
            code = proc.wait()
            if code != 0:
                stderr.seek(0)
                message = stderr.read().decode(errors="replace").strip()[-2000:]
                hint = (
                    f"; {ADMIN_HINT}" if "permission denied" in message or "must be owner" in message else ""
                )
                raise FailedPrecondition(
                    f"psql could not restore {backup.object_key} into {database!r} "
                    f"(exit {code}): {message}{hint}"
                )

    def verify(self, backup: BackupRecord, database: str) -> dict[str, int]:
        """Row counts and checksums per table must equal the catalogue's (taken at dump time)."""
        with psycopg.connect(
            self.app_dsn(database), connect_timeout=10, options="-c statement_timeout=0"
        ) as conn:
            actual = table_inventory(conn)
        if backup.checksums:
            expected = {t: TableState(n, backup.checksums.get(t, "")) for t, n in backup.row_counts.items()}
        else:  # catalogued before checksums were kept: counts only
            expected = {t: TableState(n, "") for t, n in backup.row_counts.items()}
            actual = {t: TableState(s.rows, "") for t, s in actual.items()}
        problems = compare_inventories(expected, actual)
        if problems:
            raise FailedPrecondition(
                f"database {database!r} restored from {backup.object_key} does not match the catalogue: "
                + "; ".join(problems)
            )
        return {t: s.rows for t, s in actual.items()}

    def sample_search(self, database: str, *, samples: int = 3) -> list[dict[str, Any]]:
        """Dense and BM25 search work on the restored index: a chunk's own vector finds it first,
        and its own words find it in the BM25 top 10."""
        from rag.adapters.postgres.indexes import IndexRegistry
        from rag.adapters.postgres.pool import create_pool
        from rag.adapters.postgres.search import SearchRepository
        from rag.core.search import Filters

        checks: list[dict[str, Any]] = []
        scratch = self.settings.model_copy(update={"DATABASE_URL": self.app_dsn(database)})
        with create_pool(scratch, min_size=1, name="rag-restore-check") as pool:
            active = IndexRegistry(pool).active()
            if active is None:
                log.warning(
                    "restored database %s has no active embedding index: no search to check", database
                )
                return checks
            search = SearchRepository(pool)
            for chunk_id, tenant, vector, text in search.sample_chunks(active.model_version, samples):
                dense = search.dense(
                    tenant=tenant, version=active.model_version, vector=vector, k=5, filters=Filters()
                )
                # An identical chunk elsewhere has the same vector: any hit at distance 0 will do.
                exact = {i for i, d in dense if d <= 1e-6}
                dense_ok = bool(dense) and (dense[0][0] == chunk_id or chunk_id in exact)
                words = " ".join(text.split()[:24])
                lexical = search.lexical(
                    tenant=tenant, version=active.model_version, query=words, k=10, filters=Filters()
                )
                lexical_ok = chunk_id in {i for i, _ in lexical}
                checks.append(
                    {
                        "chunk_id": chunk_id,
                        "dense_first": dense[0][0] if dense else None,
                        "dense_ok": dense_ok,
                        "bm25_hits": len(lexical),
                        "bm25_ok": lexical_ok,
                    }
                )
        failed = [c for c in checks if not (c["dense_ok"] and c["bm25_ok"])]
        if failed:
            raise FailedPrecondition(f"search on the restored database {database!r} failed: {failed}")
        return checks

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
            report.tables = self.verify(plan.backup, database)
            timed("verify", began)
            began = time.monotonic()
            report.search = self.sample_search(database, samples=samples)
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
