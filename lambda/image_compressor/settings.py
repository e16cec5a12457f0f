"""Every setting of the function, read from environment variables in this one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Default ``MAX_OBJECT_BYTES``: 50 MiB, far above any camera JPEG and well inside a 1 GB function's memory.
DEFAULT_MAX_OBJECT_BYTES = 50 * 1024 * 1024


class SettingsError(ValueError):
    """An environment variable holds a value the function cannot use; the message names it and says what fits."""


@dataclass(frozen=True, slots=True)
class CompressionOptions:
    """How the pure core compresses an image (no AWS in here).

    Attributes
    ----------
    quality : int
        JPEG quality 1-95 for the encoder.
    max_dimension : int | None
        Longest output side in pixels; larger images are downscaled. ``None`` keeps the size.
    keep_metadata : bool
        Keep EXIF (minus orientation, which is applied to the pixels), XMP, IPTC and comments. GPS is still
        dropped unless ``keep_gps`` is also set.
    max_pixels : int
        Refuse images with more pixels than this before decoding (decompression-bomb guard).
    progressive : bool
        Write progressive JPEG.
    optimize : bool
        Optimise Huffman tables.
    keep_gps : bool
        With ``keep_metadata``, also keep GPS location (EXIF GPS IFD, GPS in XMP). Ignored without it.
    """

    quality: int = 80
    max_dimension: int | None = None
    keep_metadata: bool = False
    max_pixels: int = 50_000_000
    progressive: bool = True
    optimize: bool = True
    keep_gps: bool = False

    def __post_init__(self) -> None:
        """Check value ranges so a bad setting fails loudly before any image is touched."""
        if not 1 <= self.quality <= 95:
            raise SettingsError(f"quality must be between 1 and 95, got {self.quality}")
        if self.max_dimension is not None and self.max_dimension < 1:
            raise SettingsError(f"max_dimension must be a positive number of pixels, got {self.max_dimension}")
        if self.max_pixels < 1:
            raise SettingsError(f"max_pixels must be positive, got {self.max_pixels}")

    def fingerprint(self) -> str:
        """Return a short stable string of the options, stored on outputs to make retries idempotent.

        Every option that can change the outcome is in it (the pixel cap too, so raising it re-processes objects
        that failed on the old cap).
        """
        return (
            f"q{self.quality}-d{self.max_dimension or 0}-m{int(self.keep_metadata)}"
            f"-p{int(self.progressive)}-o{int(self.optimize)}-x{self.max_pixels}"
            + ("-g1" if self.keep_metadata and self.keep_gps else "")
        )


@dataclass(frozen=True, slots=True)
class Settings:
    """Settings of the Lambda function: targets plus compression options.

    Attributes
    ----------
    dest_bucket : str
        ``DEST_BUCKET``: where compressed images go (same key).
    failed_bucket : str
        ``FAILED_BUCKET``: where originals that could not be compressed are copied.
    sns_topic_arn : str | None
        ``SNS_TOPIC_ARN``: topic for success and failure notifications; unset disables publishing.
    compression : CompressionOptions
        From ``JPEG_QUALITY``, ``MAX_DIMENSION``, ``KEEP_METADATA``, ``KEEP_GPS``, ``MAX_PIXELS``, ``PROGRESSIVE``,
        ``OPTIMIZE``.
    max_object_bytes : int
        ``MAX_OBJECT_BYTES``: larger source objects are not downloaded; they go to the failed bucket with a reason.
    """

    dest_bucket: str
    failed_bucket: str
    sns_topic_arn: str | None = None
    compression: CompressionOptions = field(default_factory=CompressionOptions)
    max_object_bytes: int = DEFAULT_MAX_OBJECT_BYTES

    def __post_init__(self) -> None:
        """Check the object size cap so a bad setting fails before any object is touched."""
        if self.max_object_bytes < 1:
            raise SettingsError(f"MAX_OBJECT_BYTES must be a positive number of bytes, got {self.max_object_bytes}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``env`` (default ``os.environ``).

        Raises
        ------
        SettingsError
            When a required variable is missing or a value does not parse; the message names the variable.
        """
        env = os.environ if env is None else env
        defaults = CompressionOptions()
        compression = CompressionOptions(
            quality=_int(env, "JPEG_QUALITY", defaults.quality),
            max_dimension=_int(env, "MAX_DIMENSION", 0) or None,
            keep_metadata=_bool(env, "KEEP_METADATA", defaults.keep_metadata),
            max_pixels=_int(env, "MAX_PIXELS", defaults.max_pixels),
            progressive=_bool(env, "PROGRESSIVE", defaults.progressive),
            optimize=_bool(env, "OPTIMIZE", defaults.optimize),
            keep_gps=_bool(env, "KEEP_GPS", defaults.keep_gps),
        )
        return cls(
            dest_bucket=_required(env, "DEST_BUCKET"),
            failed_bucket=_required(env, "FAILED_BUCKET"),
            sns_topic_arn=env.get("SNS_TOPIC_ARN") or None,
            compression=compression,
            max_object_bytes=_int(env, "MAX_OBJECT_BYTES", DEFAULT_MAX_OBJECT_BYTES),
        )


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is required but not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name} must be a whole number, got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"environment variable {name} must be true or false, got {raw!r}")
