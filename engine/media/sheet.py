"""The engraved lead sheet: MusicXML set by Verovio, drawn by cairo (PNG and PDF).

Verovio (in-process, a few milliseconds a page) lays the MusicXML out as SVG pages: A4, the
breaks the MusicXML asks for (4 bars a line, 16 a page). cairosvg draws them: the PNG is every
page one under the other (the last page only as tall as its systems), the PDF one A4 page each.
docs/notation.md compares Verovio with LilyPond.

The header is the MusicXML's credits (title, subtitle with the style, key and tempo, composer);
Verovio sets them all in one size, so `_sized_header` gives the title and the composer theirs
in the MEI Verovio made of the MusicXML, which is then laid out.

Verovio writes the few symbols set inside text (the tempo's note, a chord symbol's flat or sharp)
in its SMuFL text font, embedded as a web font that no rasteriser here reads, and the header's
text font has no music symbols at all; `_plain_symbols` writes them with the Unicode music
symbols of a system font (DejaVu) instead.
"""
from __future__ import annotations

import io
import re
import threading

from engine.errors import EngineError

PNG_WIDTH = 1240  # px: an A4 page at 150 dpi
_OPTIONS = {
    "pageWidth": 2100, "pageHeight": 2970, "scale": 50, "breaks": "encoded", "footer": "none", "header": "auto",
    "pageMarginLeft": 120, "pageMarginRight": 120, "pageMarginTop": 100, "pageMarginBottom": 100,
    "smuflTextFont": "none", "spacingSystem": 14, "svgViewBox": True,
}
# SMuFL code points Verovio sets in text -> the Unicode music symbols (DejaVu has them)
_SMUFL_TEXT = {"\uea63": "\U0001d12b", "\uea64": "\u266d", "\uea65": "\u266e", "\uea66": "\u266f",
               "\uea67": "\U0001d12a", "\ue260": "\u266d", "\ue261": "\u266e", "\ue262": "\u266f",
               "\ueca5": "\u2669", "\ueca7": "\u266a", "\ueca3": "\U0001d15e", "\uecb7": "."}
_LOCK = threading.Lock()  # one Verovio toolkit per process, used by one thread at a time
_TOOLKIT = None


class SheetError(EngineError):
    """The lead sheet could not be engraved."""


def engrave(musicxml: bytes, last_page_fits: bool = True) -> list[str]:
    """The MusicXML as SVG pages (A4; with ``last_page_fits`` each page only as tall as its systems).

    Raises:
        SheetError: Verovio could not read the MusicXML.
    """
    global _TOOLKIT
    import verovio

    with _LOCK:
        if _TOOLKIT is None:
            verovio.enableLog(verovio.LOG_OFF)
            _TOOLKIT = verovio.toolkit()
        tk = _TOOLKIT
        tk.setOptions({**_OPTIONS, "adjustPageHeight": last_page_fits})
        if not tk.loadData(musicxml.decode("utf-8")):
            raise SheetError("Verovio could not read the lead sheet's MusicXML")
        mei = tk.getMEI()
        sized = _sized_header(mei)
        if sized != mei and not tk.loadData(sized):
            raise SheetError("Verovio could not read the lead sheet's header")
        return [_plain_symbols(tk.renderToSVG(page)) for page in range(1, tk.getPageCount() + 1)]


def _sized_header(mei: str) -> str:
    """The header's lines in their sizes: Verovio sets every MusicXML credit in one size, and
    MEI says it with ``fontsize``: the title (the first line) large, the composer (on the right) small."""
    head = re.search(r"<pgHead\b.*?</pgHead>", mei, flags=re.S)
    if head is None:
        return mei
    lines = re.sub(r'<rend (xml:id="[^"]*" )halign="center"', r'<rend \1fontsize="x-large" halign="center"',
                   head.group(0), count=1)
    lines = re.sub(r'<rend (xml:id="[^"]*" )halign="right"', r'<rend \1fontsize="small" halign="right"', lines)
    return mei[:head.start()] + lines + mei[head.end():]


def _plain_symbols(svg: str) -> str:
    def swap(m: re.Match[str]) -> str:
        text = "".join(_SMUFL_TEXT.get(ch, ch) for ch in m.group(3).replace(" \uecb7", "\uecb7"))  # a dotted note: no gap
        return f'{m.group(1)}font-family="DejaVu Sans" font-size="{int(m.group(2)) * 0.55:.0f}px">{text}<'

    svg = re.sub(r'(<tspan[^>]*?)font-family="Leipzig" font-size="(\d+)px">([^<]*)<', swap, svg)
    # a line of text with a symbol in it (the header's key and tempo) is set in DejaVu Serif whole:
    # cairo would place a symbol's own span wrongly in a centred line
    return re.sub(r'<tspan (font-size="\d+px">[^<]*[\u2669\u266a\u266d\u266e\u266f])', r'<tspan font-family="DejaVu Serif" \1', svg)


def to_png(pages: list[str], width: int = PNG_WIDTH) -> bytes:
    """The pages as one PNG, one under the other, ``width`` px wide on white.

    Raises:
        SheetError: cairo could not draw a page.
    """
    import cairosvg
    from PIL import Image

    try:
        images = [Image.open(io.BytesIO(cairosvg.svg2png(bytestring=p.encode(), output_width=width,
                                                         background_color="white"))).convert("L")
                  for p in pages]
    except Exception as exc:  # cairo's errors are of many kinds; the sheet fails with one line
        raise SheetError(f"the lead sheet could not be drawn: {exc}") from exc
    sheet = Image.new("L", (width, sum(i.height for i in images)), 255)
    y = 0
    for image in images:
        sheet.paste(image, (0, y))
        y += image.height
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def to_pdf(pages: list[str]) -> bytes:
    """The pages as a PDF, one A4 page each (vector: the notes stay sharp at any zoom).

    Raises:
        SheetError: cairo could not draw a page.
    """
    from cairosvg.parser import Tree
    from cairosvg.surface import PDFSurface

    out = io.BytesIO()
    try:
        surface = PDFSurface(Tree(bytestring=pages[0].encode()), out, 96)
        for page in pages[1:]:
            surface.cairo.show_page()
            surface.draw(Tree(bytestring=page.encode()))
        surface.finish()
    except Exception as exc:  # as in to_png
        raise SheetError(f"the lead sheet's PDF could not be drawn: {exc}") from exc
    return out.getvalue()
