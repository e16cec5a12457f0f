"""The identity of an upload event: which source object and version it is about, and how two events of a key order.

Pure: the AWS glue hands in what S3 said about the source (anything with ``etag``, ``last_modified`` and
``version_id``, such as ``aws.ObjectInfo``), and the idempotency checks compare the identity with the one recorded in
an outcome's metadata.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from image_compressor.result import MetadataKey


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A source object named by an S3 event record (key already URL-decoded), with the record's identity fields.

    Attributes
    ----------
    bucket, key : str
        The source object.
    etag : str | None
        The record's ``s3.object.eTag``: the version the event is about (``None`` when the event has none).
    version_id : str | None
        The record's ``s3.object.versionId`` (versioned buckets).
    sequencer : str | None
        The record's ``s3.object.sequencer``: hex, growing with each event of one key (S3 sends it; moto and
        manual or backfill invocations may not).
    event_id : str | None
        An explicit identity for an invocation that is not an S3 notification (e.g. a batch task id).
    """

    bucket: str
    key: str
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None
    event_id: str | None = None


class SourceVersion(Protocol):
    """What the identity reads of the source object as S3 reported it (``aws.ObjectInfo`` has these fields)."""

    @property
    def etag(self) -> str:
        """The ETag without quotes."""
        ...

    @property
    def last_modified(self) -> int | None:
        """LastModified in whole epoch seconds, when S3 said."""
        ...

    @property
    def version_id(self) -> str | None:
        """The version id on a versioned bucket."""
        ...


@dataclass(frozen=True, slots=True)
class Identity:
    """Who an outcome belongs to: one upload event of one source version.

    Attributes
    ----------
    event_id : str
        Deterministic id (32 hex): a hash of bucket, key, version id and the event's sequencer; without a
        sequencer, of the explicit event id, or else of the source object's ETag and LastModified as found (a
        manual or backfill invocation). A retry of the same event has the same id.
    sequencer : str | None
        The event's sequencer (orders events of one key).
    modified : int | None
        The source version's LastModified in epoch seconds (orders when a side has no sequencer).
    version_id : str | None
        The source version id, when versioned.
    """

    event_id: str
    sequencer: str | None
    modified: int | None
    version_id: str | None

    def metadata(self) -> dict[str, str]:
        """The identity as object metadata (``source-event`` and the ordering fields)."""
        meta = {MetadataKey.SOURCE_EVENT.value: self.event_id}
        if self.sequencer:
            meta[MetadataKey.SOURCE_SEQUENCER.value] = self.sequencer
        if self.modified is not None:
            meta[MetadataKey.SOURCE_MODIFIED.value] = str(self.modified)
        if self.version_id:
            meta[MetadataKey.SOURCE_VERSION.value] = self.version_id
        return meta


def identify(ref: ObjectRef, source: SourceVersion) -> Identity:
    """Return the identity of the event ``ref`` for the source version ``source`` (see :class:`Identity`).

    Parameters
    ----------
    ref : ObjectRef
        The event's object and identity fields.
    source : SourceVersion
        The source object as HeadObject found it.

    Returns
    -------
    Identity
        The event id hashed from bucket, key, version and the sequencer (else the explicit event id, else the
        source's ETag and LastModified), with the ordering fields.
    """
    version = ref.version_id or source.version_id
    if ref.sequencer:
        basis = f"sequencer:{ref.sequencer.upper().lstrip('0')}"
    elif ref.event_id:
        basis = f"event:{ref.event_id}"
    else:
        basis = f"object:{source.etag}:{source.last_modified}"
    text = "\n".join((ref.bucket, ref.key, version or "", basis))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    return Identity(digest, ref.sequencer, source.last_modified, version)


def compare(ours: Identity, recorded: dict[str, str]) -> int:
    """Order the event ``ours`` against the one that produced an object with metadata ``recorded``.

    Sequencers are compared as integers when both sides have one (S3's rule: left-pad the shorter with zeros and
    compare, meaningful for one key only); else the source LastModified seconds.

    Returns
    -------
    int
        1 when ours is newer, -1 when the recorded one is, 0 when they are the same or cannot be told apart (an
        object written before event identities existed, the same second without sequencers).
    """
    theirs = recorded.get(MetadataKey.SOURCE_SEQUENCER)
    if ours.sequencer and theirs:
        a, b = _hex(ours.sequencer), _hex(theirs)
        if a is not None and b is not None:
            return (a > b) - (a < b)
    modified = _int_or_none(recorded.get(MetadataKey.SOURCE_MODIFIED))
    if ours.modified is not None and modified is not None:
        return (ours.modified > modified) - (ours.modified < modified)
    return 0


def replaced(ref: ObjectRef, source: SourceVersion) -> str | None:
    """Say why the event ``ref`` is not about the source object now in the bucket.

    Returns
    -------
    str | None
        The reason when the event names another version id or ETag than ``source`` has, else ``None``.
    """
    if ref.version_id and source.version_id and ref.version_id != source.version_id:
        return f"version {ref.version_id} is no longer the current version of the source object"
    if ref.etag and ref.etag.strip('"') != source.etag:
        return "the source object was replaced by a newer upload before this event was processed"
    return None


def _hex(value: str) -> int | None:
    try:
        return int(value, 16)
    except ValueError:
        return None


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
