"""Backup sets of the stack: create (`invoke backup`), list, verify with a restore drill, and restore.

One module per component kind (mysql, postgres, redis, volume), each a dumper and a restorer over byte pipes;
`manifest` holds the pure rules of one set (names, checksums, counts, validation); `sets` the sets of a directory
(finding, listing, retention, interrupted leftovers).
"""

from .create import create_backup
from .manifest import SetError, check_set
from .restore import SAFETY_DIR, restore_set
from .sets import apply_retention, resolve_set, scan_sets, sets_to_remove, show_sets
from .verify import verify_set

__all__ = [
    "SAFETY_DIR",
    "SetError",
    "apply_retention",
    "check_set",
    "create_backup",
    "resolve_set",
    "restore_set",
    "scan_sets",
    "sets_to_remove",
    "show_sets",
    "verify_set",
]
