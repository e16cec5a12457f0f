"""Untrusted text in the dashboard renders as its own characters: checked with a real CommonMark parser."""

from __future__ import annotations

import html
import io
import re

import pytest
from markdown_it import MarkdownIt
from PIL import Image

from dashboard import images
from dashboard.text import code, md
from tests.jpegs import photo_jpeg

NASTY = [
    "photos/[click me](https://evil.example/phish).jpg",
    "![pixel](https://evil.example/track.png).jpg",
    "<img src=https://evil.example/x.png onerror=alert(1)>.jpg",
    "<https://evil.example>.jpg",
    "a `code` b ``two`` c.jpg",
    "# heading\n- list item\n> quote.jpg",
    "**bold** _it_ ~~gone~~ | table | row |.jpg",
    ":red[RED] :material/warning: $x^2$ $$y$$.jpg",
    "back\\slash\\[x](https://evil.example).jpg",
    "1. numbered\r\n2) also.jpg",
    "www.evil.example and https://evil.example/bare.jpg",
    "[ref]: https://evil.example\n[ref].jpg",
    "tab\there &amp; &lt;b&gt; entity.jpg",
    "mail me@evil.example or mailto:x@evil.example.jpg",
    "``[x](https://evil.example)`` and `https://evil.example/`.jpg",
    "naïve café 日本.jpg",
]


def test_code_spans_hold_any_backticks() -> None:
    for text in ("plain", "a`b", "``", "`start", "end`", " spaced ", "x ``` y"):
        out = rendered(code(text))
        assert out.count("<code>") == 1
        assert html.unescape(re.sub(r"<[^>]+>", "", out)).strip("\n") == text


def rendered(markdown: str) -> str:
    # CommonMark plus tables, strikethrough and bare-URL links, as Streamlit's GitHub-flavoured renderer has them.
    parser = MarkdownIt("commonmark", {"linkify": False}).enable(["table", "strikethrough"])
    return parser.render(markdown)


@pytest.mark.parametrize("text", NASTY)
def test_markdown_of_untrusted_text_shows_exactly_its_characters(text: str) -> None:
    out = rendered(f"**Key:** {md(text)}")
    assert "<a " not in out and "<img" not in out
    # What GFM would autolink after parsing (bare URLs, www., e-mail) is only ever inside a code span.
    outside_code = re.sub(r"<code>.*?</code>", "", out)
    assert not re.search(r"(?i)https?://|www\.|@", html.unescape(re.sub(r"<[^>]+>", "", outside_code)))
    assert out.count("<p>") == 1 and "<h1>" not in out and "<li>" not in out and "<table>" not in out
    shown = html.unescape(re.sub(r"<[^>]+>", "", out)).strip()
    expected = re.sub(r"[\r\n]+", " ", text).replace("\t", " ")
    assert shown == f"Key: {expected}"


@pytest.mark.parametrize("text", NASTY)
def test_streamlit_directives_and_latex_cannot_start(text: str) -> None:
    escaped = md(text)
    assert not re.search(r"(?<!\\):[a-z]+\[", escaped)  # :red[...] colour directives
    assert not re.search(r"(?<!\\):material/", escaped)  # icons
    assert not re.search(r"(?<!\\)\$", escaped)  # LaTeX


def test_previews_decode_jpeg_only() -> None:
    png = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(png, "PNG")
    with pytest.raises(ValueError, match="not a JPEG"):
        images.preview_pair(png.getvalue(), None)
    assert images.full_size(png.getvalue()) is None
    before, after = images.preview_pair(photo_jpeg(320, 240), photo_jpeg(160, 120))
    assert (before.full_width, before.full_height) == (320, 240) and after is not None
