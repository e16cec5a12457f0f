"""Every setting of the function, read from environment variables in this one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Default ``MAX_OBJECT_BYTES``: 50 MiB, far above any camera JPEG and well inside a 1 GB function's memory.
DEFAULT_MAX_OBJECT_BYTES = 50 * 1024 * 1024
#: Default ``JPEG_QUALITY`` with a ``TARGET_SSIM``: the ceiling of the quality search.
DEFAULT_QUALITY = 95
#: Default ``JPEG_QUALITY`` without a ``TARGET_SSIM``: the fixed quality of every image.
DEFAULT_FIXED_QUALITY = 85
#: Default ``TARGET_SSIM``: luma SSIM each image must at least reach; above ``MIN_QUALITY`` it lifts images where the
#: encoder's quality scale is too coarse (noise on black, fine texture, text). Measured against SSIMULACRA2 in
#: ``bench/FINDINGS.md``.
DEFAULT_TARGET_SSIM = 0.95
#: Default ``MIN_QUALITY``: the lowest quality the search may pick. jpegli's 78 (adaptive quantisation off) is the
#: perceptual operating point: SSIMULACRA2 >= 70 on every benchmark picture once the SSIM safety net has lifted the
#: noisy ones, and the fewest bytes against sharp's mozjpeg preset at equal SSIMULACRA2 (``bench/FINDINGS.md``).
DEFAULT_MIN_QUALITY = 78
#: Default ``MAX_SCANS``: progressive JPEGs have about 10 scans (libjpeg's own tools refuse above 100 with -maxscans).
DEFAULT_MAX_SCANS = 100
#: Values of ``JPEG_ENCODER``.
ENCODERS = ("jpegli", "pillow")
#: Default ``JPEG_ENCODER``: Google's jpegli, the smallest files at equal SSIM (``bench/FINDINGS.md``).
DEFAULT_ENCODER = "jpegli"
#: Target-SSIM values that turn the quality search off (``TARGET_SSIM`` and the CLI's ``--target-ssim``).
OFF_WORDS = frozenset({"", "0", "off", "none", "false", "no"})


class SettingsError(ValueError):
    """An environment variable holds a value the function cannot use; the message names it and says what fits."""


@dataclass(frozen=True, slots=True)
class CompressionOptions:
    """How the pure core compresses an image (no AWS in here).

    Attributes
    ----------
    quality : int
        JPEG quality 1-95 on the chosen encoder's scale. With ``target_ssim`` set (the default) it is the highest
        quality the search may pick (the ceiling); with ``target_ssim=None`` it is the fixed quality of every image.
        Left out (``None``), it becomes the mode's default: ``DEFAULT_QUALITY`` (95) as the search's ceiling,
        ``DEFAULT_FIXED_QUALITY`` (85) without a target; after construction it is always a number.
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
    encoder : str
        ``jpegli`` (Google's jpegli, the default: smallest output) or ``pillow`` (libjpeg-turbo: about as
        fast, about 10 % more bytes).
    target_ssim : float | None
        Luma SSIM (0-1, exclusive) each image's quality is searched for: the lowest quality in
        ``min_quality..quality`` whose output reaches it. ``None`` turns the search off (fixed ``quality``).
    min_quality : int
        Lowest quality the search may pick (1-95; when above ``quality``, ``quality`` wins).
    max_scans : int
        Refuse JPEGs with more scans (SOS markers) than this before decoding: every scan makes the decoder go over
        the whole image again, so thousands of tiny scans are a CPU bomb in a small file.
    """

    quality: int | None = None  # always an int after __post_init__
    max_dimension: int | None = None
    keep_metadata: bool = False
    max_pixels: int = 50_000_000
    progressive: bool = True
    optimize: bool = True
    keep_gps: bool = False
    encoder: str = DEFAULT_ENCODER
    target_ssim: float | None = DEFAULT_TARGET_SSIM
    min_quality: int = DEFAULT_MIN_QUALITY
    max_scans: int = DEFAULT_MAX_SCANS

    def __post_init__(self) -> None:
        """Fill in the mode's default quality; check value ranges so a bad setting fails before any image."""
        if self.quality is None:
            default = DEFAULT_QUALITY if self.target_ssim is not None else DEFAULT_FIXED_QUALITY
            object.__setattr__(self, "quality", default)
        if not 1 <= self.quality <= 95:
            raise SettingsError(f"quality must be between 1 and 95, got {self.quality}")
        if not 1 <= self.min_quality <= 95:
            raise SettingsError(f"min_quality must be between 1 and 95, got {self.min_quality}")
        if self.encoder not in ENCODERS:
            raise SettingsError(f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.target_ssim is not None and not 0.0 < self.target_ssim < 1.0:
            raise SettingsError(
                f"target_ssim must be above 0 and below 1 (for example 0.96), or None for a fixed quality; "
                f"got {self.target_ssim}"
            )
        if self.max_dimension is not None and self.max_dimension < 1:
            raise SettingsError(f"max_dimension must be a positive number of pixels, got {self.max_dimension}")
        if self.max_pixels < 1:
            raise SettingsError(f"max_pixels must be positive, got {self.max_pixels}")
        if self.max_scans < 1:
            raise SettingsError(f"max_scans must be a positive number of scans, got {self.max_scans}")

    def fingerprint(self) -> str:
        """Return a short stable string of the options, stored on outputs to make retries idempotent.

        Every option that can change the outcome is in it (the pixel and scan caps too, so raising them
        re-processes objects that failed on the old cap).
        """
        search = f"-s{self.target_ssim!r}-n{min(self.min_quality, self.quality)}" if self.target_ssim else ""
        return (
            f"q{self.quality}-d{self.max_dimension or 0}-m{int(self.keep_metadata)}"
            f"-p{int(self.progressive)}-o{int(self.optimize)}-x{self.max_pixels}"
            + ("-g1" if self.keep_metadata and self.keep_gps else "")
            + f"-e{self.encoder}{search}"
            + f"-k{self.max_scans}"
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
        ``OPTIMIZE``, ``JPEG_ENCODER``, ``TARGET_SSIM``, ``MIN_QUALITY``, ``MAX_SCANS``.
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

    def fingerprint(self) -> str:
        """Return the fingerprint of every setting that can change an object's outcome, stored on each outcome.

        The compression options' fingerprint plus ``MAX_OBJECT_BYTES`` (an object over the cap fails without being
        downloaded). An output is re-used for a new upload of the same bytes only under the same fingerprint.
        """
        return f"{self.compression.fingerprint()}-b{self.max_object_bytes}"

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
            quality=_optional_int(env, "JPEG_QUALITY"),
            max_dimension=_int(env, "MAX_DIMENSION", 0) or None,
            keep_metadata=_bool(env, "KEEP_METADATA", defaults.keep_metadata),
            max_pixels=_int(env, "MAX_PIXELS", defaults.max_pixels),
            progressive=_bool(env, "PROGRESSIVE", defaults.progressive),
            optimize=_bool(env, "OPTIMIZE", defaults.optimize),
            keep_gps=_bool(env, "KEEP_GPS", defaults.keep_gps),
            encoder=_choice(env, "JPEG_ENCODER", ENCODERS, defaults.encoder),
            target_ssim=_target_ssim(env, "TARGET_SSIM", defaults.target_ssim),
            min_quality=_int(env, "MIN_QUALITY", defaults.min_quality),
            max_scans=_int(env, "MAX_SCANS", defaults.max_scans),
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


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    """The variable as a whole number, or None when it is unset or empty."""
    return _int(env, name, 0) if env.get(name, "").strip() else None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"environment variable {name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise SettingsError(f"environment variable {name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def parse_target_ssim(text: str) -> float | None:
    """Parse a target SSIM: one of :data:`OFF_WORDS` (any case) is ``None`` (search off), else a number in (0, 1).

    Raises
    ------
    ValueError
        When ``text`` is neither an off word nor a number above 0 and below 1.
    """
    raw = text.strip().lower()
    if raw in OFF_WORDS:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise ValueError(f"not an SSIM above 0 and below 1: {raw!r}")
    return value


def _target_ssim(env: Mapping[str, str], name: str, default: float | None) -> float | None:
    """Unset: the default. Set to empty, 0, off, none, false or no: None (search off). Else a number in (0, 1)."""
    if name not in env:
        return default
    try:
        return parse_target_ssim(env[name])
    except ValueError:
        raise SettingsError(
            f"environment variable {name} must be an SSIM above 0 and below 1 (for example 0.96), or off for a "
            f"fixed JPEG_QUALITY; got {env[name].strip().lower()!r}"
        ) from None
