"""The markdown filter: rendered, highlighted, and safe whatever the dataset contains."""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings
from django.template import Context, Template

from annotation.templatetags.markdown_extras import pygments_css, render_markdown, sanitize_html


def test_script_tags_are_not_rendered() -> None:
    html = render_markdown("Hello <script>alert('x')</script> world")
    assert "<script" not in html
    assert "&lt;script&gt;" in html  # shown as text, as the response wrote it


def test_onerror_attributes_are_not_rendered() -> None:
    html = render_markdown('Look: <img src="x" onerror="alert(1)"> and <p onclick="steal()">hi</p>')
    assert "<img" not in html and "<p onclick" not in html
    assert not re.search(r"<[^>]+\son\w+=", html)


def test_sanitizer_strips_script_style_and_event_handlers_from_html() -> None:
    dirty = (
        '<p onclick="x()">a</p><img src=x onerror=alert(1)><script>alert(1)</script>'
        '<style>body{}</style><div class="highlight" style="color:red">b</div>'
        '<a href="javascript:alert(1)">c</a><iframe src="https://evil.example"></iframe>'
    )
    html = sanitize_html(dirty)
    assert "onclick" not in html and "onerror" not in html and "<img" not in html
    assert "<script" not in html and "alert(1)" not in html and "<style" not in html and "body{}" not in html
    assert "style=" not in html and "javascript:" not in html and "<iframe" not in html
    assert '<div class="highlight">b</div>' in html


def test_class_is_kept_only_on_span_code_pre_div() -> None:
    html = sanitize_html('<p class="x">a</p><span class="k">b</span><a class="y" href="https://e.org">c</a>')
    assert "<p>a</p>" in html and '<span class="k">b</span>' in html and 'class="y"' not in html


def test_javascript_links_are_removed() -> None:
    html = render_markdown("[click me](javascript:alert(document.cookie)) and [ok](https://example.org/a)")
    assert "javascript:" not in html
    assert "click me" in html
    assert '<a href="https://example.org/a"' in html
    assert 'rel="noopener noreferrer nofollow"' in html


def test_code_block_is_highlighted() -> None:
    html = render_markdown("Try this:\n\n```python\ndef add(a, b):\n    return a + b\n```\n")
    assert '<div class="highlight">' in html
    assert '<span class="k">def</span>' in html
    assert '<span class="nf">add</span>' in html


def test_code_block_keeps_html_as_text() -> None:
    html = render_markdown("```html\n<script>alert(1)</script>\n```")
    assert "<script>" not in html and "&lt;" in html


def test_plain_text_is_escaped() -> None:
    html = render_markdown('5 < 6 & "quotes" > <b>not bold</b>')
    assert "5 &lt; 6 &amp;" in html
    assert "<b>" not in html and "&lt;b&gt;not bold&lt;/b&gt;" in html


def test_chat_mode_keeps_line_breaks_and_doc_mode_follows_markdown() -> None:
    assert "<br" in render_markdown("line one\nline two")
    assert "<br" not in render_markdown("line one\nline two", mode="doc")


def test_tables_and_lists_render() -> None:
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n\n- x\n- y")
    assert "<table>" in html and "<td>1</td>" in html and "<li>x</li>" in html


def test_filter_in_a_template_is_safe_html() -> None:
    template = Template('{% load markdown_extras %}{{ text|markdown }}|{{ doc|markdown:"doc" }}')
    out = template.render(Context({"text": "**bold** <i>", "doc": "# Title"}))
    assert "<strong>bold</strong> &lt;i&gt;" in out and "<h1>Title</h1>" in out


def test_empty_text_renders_nothing() -> None:
    assert render_markdown("") == "" and render_markdown(None) == ""


def test_pygments_stylesheet_is_generated_into_static() -> None:
    path = Path(settings.BASE_DIR) / "static" / "css" / "pygments.css"
    assert path.read_text() == pygments_css()
