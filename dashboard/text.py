"""Untrusted text (object keys, reasons, message subjects, error messages) made safe for Streamlit's Markdown.

Every Streamlit element that takes a label or body (``st.markdown``, ``st.caption``, ``st.error``, expander labels,
...) renders Markdown plus Streamlit's own directives (``:red[...]``, ``:material/icon:``, ``$LaTeX$``), and turns
bare URLs into links (GitHub's autolink literals, applied to the text after escapes are resolved, so escaping
cannot stop them). An object key such as ``[x](https://evil.example) ![i](https://evil.example/i.png).jpg`` must
show as those characters, never as a link or an image: words that would become links go into code spans (shown as
they are, in monospace), everything else is backslash-escaped. No Streamlit import here: the rules are pure and
tested as such (tests/unit/test_dashboard_text.py, with a CommonMark parser; tests/browser, in Chromium).
"""

from __future__ import annotations

import re

# Every ASCII punctuation character may be backslash-escaped in CommonMark; these are the ones that start Markdown,
# HTML, Streamlit directives (`:` colours and icons) or LaTeX (`$`). Escaping all of them is simpler than knowing
# which position makes which one live.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&=\"'])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
# What GitHub-flavoured Markdown turns into a link by itself: a URL scheme, "www.", or an e-mail address.
_AUTOLINK = re.compile(r"(?i)(?:[a-z][a-z0-9+.-]*:/|www\.|mailto:|xmpp:|@)")
_SPACES = re.compile(r"(\s+)")


def md(text: object) -> str:
    """Return ``text`` as Markdown that displays exactly its characters, on one line.

    Parameters
    ----------
    text : object
        Any value; ``str()`` of it is used (``None`` gives ``"None"``: pass a fallback yourself).

    Returns
    -------
    str
        Line breaks and tabs turned into spaces (a key with a newline cannot start a heading or a list); each
        whitespace-separated word that could become a link (a scheme such as ``https:/``, ``www.``, an ``@``) as a
        code span (:func:`code`); every Markdown, HTML, LaTeX and Streamlit-directive character of the other words
        backslash-escaped.
    """
    flat = _LINE_BREAKS.sub(" ", str(text)).replace("\t", " ")
    parts = []
    for word in _SPACES.split(flat):
        if not word or word.isspace():
            parts.append(word)
        elif _AUTOLINK.search(word):
            parts.append(code(word))
        else:
            parts.append(_SPECIAL.sub(r"\\\1", word))
    return "".join(parts)


def code(text: object) -> str:
    """Return ``text`` as one Markdown code span that shows exactly its characters (backticks inside included).

    The fence is one backtick longer than the longest run of backticks in the text, and a space pads both sides
    when the text starts or ends with a backtick or a space (CommonMark removes exactly that padding). Line breaks
    become spaces.
    """
    flat = _LINE_BREAKS.sub(" ", str(text))
    longest = max((len(run) for run in re.findall(r"`+", flat)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if flat[:1] in ("`", " ") or flat[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"
