"""What a restore will do, checked before anything is touched: which backup, into which
database, and whether that is the live one (see :mod:`rag.operations.restore`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.adapters.postgres import tools
from rag.adapters.postgres.backups import DATABASE, BackupCatalogue, BackupRecord
from rag.core.errors import FailedPrecondition, InvalidInput, NotFound
from rag.settings import Settings

SCRATCH_DATABASE = "rag_restore_drill"
DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
RESERVED = frozenset({"postgres", "template0", "template1"})


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
