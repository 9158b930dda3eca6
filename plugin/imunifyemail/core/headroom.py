"""The quarantine filesystem's free-space floor: when held mail is deferred instead of stored.

Below the floor, new mail that would be held is deferred (Exim keeps it) while
everything that frees space keeps working: the floor is what leaves SQLite
room for its own journal when the disk is nearly full. The numbers come from
``statvfs`` (read by the store); this module only decides.
"""
from dataclasses import dataclass
from typing import Optional

MIB = 1 << 20
AUTO_FLOOR_BYTES = 64 * MIB       # with 1% of the filesystem, whichever is larger
AUTO_FLOOR_INODES = 1000          # with 1% of the inodes, whichever is larger
AUTO_FLOOR_PERCENT = 1


@dataclass(frozen=True)
class Space:
    """A filesystem reading: sizes and free counts as an unprivileged writer sees them."""
    total_bytes: int
    free_bytes: int
    total_inodes: int      # 0: the filesystem has no inode limit (btrfs, some tmpfs)
    free_inodes: int


@dataclass(frozen=True)
class Floor:
    bytes: int
    inodes: int


def floor_for(space: Space, min_free_bytes: Optional[int], min_free_inodes: Optional[int]) -> Floor:
    """The configured floor, or (``None``) the larger of 1% and a fixed minimum."""
    if min_free_bytes is None:
        min_free_bytes = max(space.total_bytes * AUTO_FLOOR_PERCENT // 100, AUTO_FLOOR_BYTES)
    if min_free_inodes is None:
        min_free_inodes = max(space.total_inodes * AUTO_FLOOR_PERCENT // 100, AUTO_FLOOR_INODES)
    return Floor(min_free_bytes, min_free_inodes if space.total_inodes else 0)


def below_floor(space: Space, floor: Floor) -> bool:
    return space.free_bytes < floor.bytes or (space.total_inodes > 0 and space.free_inodes < floor.inodes)


def headroom(space: Space, floor: Floor) -> int:
    """Bytes that can still be stored above the floor (0 when below it, by bytes or inodes)."""
    return 0 if below_floor(space, floor) else space.free_bytes - floor.bytes


def admits(space: Space, floor: Floor, incoming_bytes: int, freed_bytes: int = 0) -> bool:
    """Whether a message of ``incoming_bytes`` (whose storing frees ``freed_bytes``
    by quota eviction) can be stored and still leave the floor free."""
    if space.free_bytes + freed_bytes - incoming_bytes < floor.bytes:
        return False
    return space.total_inodes == 0 or space.free_inodes - 1 >= floor.inodes
