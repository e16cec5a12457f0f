"""The dashboard's launch and page config keep it on this machine (the browser test checks the pages themselves)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import streamlit
from PIL import Image, ImageChops, ImageDraw, ImageFont
from streamlit import config

from ops import defaults, launch

DASHBOARD = defaults.ROOT / "dashboard"
#: What would reach off the machine without it: usage statistics (and the email prompt that sends to them), the
#: external-IP lookup (checkip.amazonaws.com) and the 8.8.8.8 route probe Streamlit makes without a set address.
OFFLINE_OPTIONS = {"browser.gatherUsageStats": "false", "server.headless": "true", "server.address": "127.0.0.1"}


def _flags(cmd: list[str]) -> dict[str, str]:
    """Return the ``--option value`` pairs of a ``streamlit run`` command line."""
    start = cmd.index("run") + 2
    return {cmd[i].removeprefix("--"): cmd[i + 1] for i in range(start, len(cmd) - 1, 2)}


def test_the_dashboard_launch_turns_off_everything_that_would_reach_off_the_machine():
    flags = _flags(launch.dashboard_command(8599, file_watcher="none"))
    assert {name: flags.get(name) for name in OFFLINE_OPTIONS} == OFFLINE_OPTIONS
    assert set(OFFLINE_OPTIONS) <= set(config.get_config_options()), "Streamlit renamed an option we rely on"


def test_a_bare_streamlit_run_reads_the_same_settings_from_the_dashboards_config_file():
    settings = tomllib.loads((DASHBOARD / ".streamlit" / "config.toml").read_text())
    found = {name: str(settings[name.split(".")[0]][name.split(".")[1]]).lower() for name in OFFLINE_OPTIONS}
    assert found == OFFLINE_OPTIONS


def _page_icons() -> list[ast.expr]:
    """The ``page_icon`` arguments of every ``st.set_page_config`` call in the dashboard."""
    icons = []
    for path in DASHBOARD.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "set_page_config":
                icons += [k.value for k in node.keywords if k.arg == "page_icon"]
    return icons


def test_the_tab_icon_is_a_file_of_the_dashboard_not_a_material_icon_the_browser_fetches():
    icons = _page_icons()
    assert [ast.unparse(icon) for icon in icons] == ["FAVICON"]
    app = ast.parse((DASHBOARD / "app.py").read_text())
    favicon = next(n for n in app.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "FAVICON")
    assert ast.unparse(favicon.value) == "Path(__file__).resolve().parent / 'assets' / 'favicon.png'"


def _glyph(name: str, size: int) -> Image.Image:
    """Render the Material Symbols Rounded ligature ``name`` from the font Streamlit bundles, centred, as ``LA``."""
    font_file = next((Path(streamlit.__file__).parent / "static" / "static" / "media").glob("MaterialSymbols-*.woff2"))
    font = ImageFont.truetype(str(font_file), size, layout_engine=ImageFont.Layout.RAQM)
    canvas = Image.new("LA", (size * 3 // 2, size * 3 // 2), (0, 0))
    ImageDraw.Draw(canvas).text((canvas.width // 2, canvas.height // 2), name, font=font, fill=(0, 255), anchor="mm")
    ink = canvas.crop(canvas.getchannel("A").getbbox())
    out = Image.new("LA", (size, size), (0, 0))
    out.paste(ink, ((size - ink.width) // 2, (size - ink.height) // 2))
    return out


def test_the_tab_icon_is_the_compress_glyph_users_saw_before():
    """The committed favicon is the ``compress`` glyph (how it was made: ``_glyph("compress", 64)``)."""
    with Image.open(DASHBOARD / "assets" / "favicon.png") as image:
        favicon = image.convert("LA")
    assert favicon.size == (64, 64)
    difference = ImageChops.difference(favicon.getchannel("A"), _glyph("compress", 64).getchannel("A"))
    assert difference.getextrema()[1] <= 32  # the same pixels, up to anti-aliasing of another FreeType
    assert ImageChops.difference(favicon.getchannel("A"), _glyph("upload", 64).getchannel("A")).getbbox() is not None
