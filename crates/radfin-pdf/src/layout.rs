//! A small page layout for documents: text lines, wrapped paragraphs and tables flowing over A4
//! pages, then written as PDF with `pdf-writer`.
//!
//! Every length is a whole number of hundredths of a point (`pt/100`); each page's content
//! stream starts by scaling to that unit, so positions are integers and no float arithmetic is
//! needed. `y` runs up from the page's bottom edge, as in PDF.

use pdf_writer::{Content, Date, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::fonts::{Font, encode};

/// A4 in pt/100 (595.28 × 841.89 pt).
pub(crate) const PAGE_WIDTH: i32 = 59_528;
pub(crate) const PAGE_HEIGHT: i32 = 84_189;
pub(crate) const LEFT: i32 = 4_000;
pub(crate) const RIGHT: i32 = PAGE_WIDTH - 4_000;
pub(crate) const WIDTH: i32 = RIGHT - LEFT;
const TOP: i32 = PAGE_HEIGHT - 3_600;
/// Content stops here; the footer is below.
const BOTTOM: i32 = 5_200;
const FOOTER: i32 = 2_600;

/// Font sizes.
pub(crate) const BODY: i32 = 900;
pub(crate) const SMALL: i32 = 750;

/// Grays (0 black, 1 white).
pub(crate) const BLACK: f32 = 0.0;
pub(crate) const MUTED: f32 = 0.35;
const HEADER_FILL: f32 = 0.9;
const RULE: f32 = 0.6;
const HAIRLINE: f32 = 0.82;

/// The distance between two lines of text of `size`.
pub(crate) fn leading(size: i32) -> i32 {
    size * 5 / 4
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

enum Op {
    Text { x: i32, y: i32, font: Font, size: i32, gray: f32, text: Vec<u8> },
    Line { x1: i32, x2: i32, y: i32, width: i32, gray: f32 },
    Rect { x: i32, y: i32, w: i32, h: i32, gray: f32, fill: bool },
}

/// The document's metadata and footer.
pub(crate) struct Meta {
    /// e.g. `TAX INVOICE INV/25-26/000001`: the PDF title, each continuation page's head and
    /// each page's footer.
    pub title: String,
    pub author: String,
    pub subject: String,
    /// `YYYY-MM-DD`: the PDF creation date (the document's issue date, so output is
    /// reproducible). Anything else leaves the date out.
    pub date: String,
    /// What the file identifier is derived from (the document's kind and number).
    pub key: String,
}

/// Pages being laid out.
pub(crate) struct Layout {
    pages: Vec<Vec<Op>>,
    /// The top of what comes next.
    pub y: i32,
    head: String,
}

impl Layout {
    /// An empty first page; `head` is printed atop every further page.
    pub fn new(head: impl Into<String>) -> Self {
        Self { pages: vec![Vec::new()], y: TOP, head: head.into() }
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Starts a new page unless `height` fits above the bottom margin; true when it did.
    pub fn ensure(&mut self, height: i32) -> bool {
        if self.y - height >= BOTTOM {
            return false;
        }
        self.pages.push(Vec::new());
        self.y = TOP;
        let head = format!("{} (continued)", self.head);
        self.text(LEFT, self.y, Font::Bold, SMALL, MUTED, &head, Align::Left);
        self.y -= leading(SMALL) + 150;
        self.rule(LEFT, RIGHT, 50, RULE);
        self.y -= 900;
        true
    }

    /// Text whose top is at `top`, with `x` its left or right edge.
    #[allow(clippy::too_many_arguments)]
    pub fn text(&mut self, x: i32, top: i32, font: Font, size: i32, gray: f32, text: &str, align: Align) {
        let text = encode(text);
        let x = match align {
            Align::Left => x,
            Align::Right => x - font.width(&text, size),
        };
        // The baseline: Helvetica's capitals rise 0.72 em above it.
        self.ops().push(Op::Text { x, y: top - size * 3 / 4, font, size, gray, text });
    }

    /// One line of text at the current position, which moves down a line.
    pub fn line(&mut self, x: i32, font: Font, size: i32, text: &str, align: Align) {
        self.ensure(leading(size));
        let y = self.y;
        self.text(x, y, font, size, BLACK, text, align);
        self.y -= leading(size);
    }

    /// `text` wrapped to `width`, from the current position down, breaking pages as needed.
    pub fn paragraph(&mut self, x: i32, width: i32, font: Font, size: i32, text: &str) {
        for l in wrap(font, size, text, width) {
            self.line(x, font, size, &l, Align::Left);
        }
    }

    /// A horizontal rule at the current position.
    pub fn rule(&mut self, x1: i32, x2: i32, width: i32, gray: f32) {
        let y = self.y;
        self.ops().push(Op::Line { x1, x2, y, width, gray });
    }

    /// A rectangle given by its top-left corner.
    pub fn rect(&mut self, x: i32, top: i32, w: i32, h: i32, gray: f32, fill: bool) {
        self.ops().push(Op::Rect { x, y: top - h, w, h, gray, fill });
    }

    /// The PDF: every page with its footer (the title and "Page i of n").
    pub fn finish(self, meta: &Meta) -> Vec<u8> {
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let info = Ref::new(3);
        let (regular, bold) = (Ref::new(4), Ref::new(5));
        let count = i32::try_from(self.pages.len()).unwrap_or(i32::MAX);
        let page_ids: Vec<(Ref, Ref)> = (0..count).map(|i| (Ref::new(6 + 2 * i), Ref::new(7 + 2 * i))).collect();

        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree).kids(page_ids.iter().map(|(page, _)| *page)).count(count);
        for (font, id) in [(Font::Regular, regular), (Font::Bold, bold)] {
            pdf.type1_font(id).base_font(font.base_font()).encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        for (i, (ops, (page_id, content_id))) in self.pages.into_iter().zip(&page_ids).enumerate() {
            let mut page = pdf.page(*page_id);
            page.media_box(Rect::new(0.0, 0.0, 595.28, 841.89)).parent(tree).contents(*content_id);
            page.resources().fonts().pair(Font::Regular.resource(), regular).pair(Font::Bold.resource(), bold);
            page.finish();

            let mut footer = Layout { pages: vec![Vec::new()], y: 0, head: String::new() };
            footer.y = FOOTER + 700;
            footer.rule(LEFT, RIGHT, 50, RULE);
            footer.text(LEFT, FOOTER, Font::Regular, SMALL, MUTED, &meta.title, Align::Left);
            let number = format!("Page {} of {count}", i + 1);
            footer.text(RIGHT, FOOTER, Font::Regular, SMALL, MUTED, &number, Align::Right);
            let mid = LEFT + WIDTH / 2;
            let note = "Computer-generated document";
            let half = Font::Regular.text_width(note, SMALL) / 2;
            footer.text(mid - half, FOOTER, Font::Regular, SMALL, MUTED, note, Align::Left);

            let mut content = Content::new();
            // Lengths below are in pt/100.
            content.transform([0.01, 0.0, 0.0, 0.01, 0.0, 0.0]);
            for op in ops.iter().chain(footer.pages.iter().flatten()) {
                draw(&mut content, op);
            }
            pdf.stream(*content_id, &content.finish());
        }

        let mut doc_info = pdf.document_info(info);
        doc_info
            .title(TextStr(&meta.title))
            .author(TextStr(&meta.author))
            .subject(TextStr(&meta.subject))
            .creator(TextStr("radfin"))
            .producer(TextStr("radfin-pdf (pdf-writer)"));
        if let Some(date) = pdf_date(&meta.date) {
            doc_info.creation_date(date);
        }
        doc_info.finish();
        let id = file_id(&meta.key);
        pdf.set_file_id((id.clone(), id));
        pdf.finish()
    }
}

fn draw(content: &mut Content, op: &Op) {
    // Casts only: lengths are small whole numbers.
    match op {
        Op::Text { x, y, font, size, gray, text } => {
            content.set_fill_gray(*gray);
            content.begin_text();
            content.set_font(font.resource(), *size as f32);
            content.next_line(*x as f32, *y as f32);
            content.show(Str(text));
            content.end_text();
        }
        Op::Line { x1, x2, y, width, gray } => {
            content.set_stroke_gray(*gray);
            content.set_line_width(*width as f32);
            content.move_to(*x1 as f32, *y as f32);
            content.line_to(*x2 as f32, *y as f32);
            content.stroke();
        }
        Op::Rect { x, y, w, h, gray, fill } => {
            content.rect(*x as f32, *y as f32, *w as f32, *h as f32);
            if *fill {
                content.set_fill_gray(*gray);
                content.fill_nonzero();
            } else {
                content.set_stroke_gray(*gray);
                content.set_line_width(60.0);
                content.stroke();
            }
        }
    }
}

/// `YYYY-MM-DD` as a PDF date.
fn pdf_date(text: &str) -> Option<Date> {
    let mut parts = text.splitn(3, '-');
    let year: u16 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    ((1..=12).contains(&month) && (1..=31).contains(&day)).then(|| Date::new(year).month(month).day(day))
}

/// 16 bytes derived from `key` (FNV-1a, twice with different seeds): the same document always
/// has the same identifier, so its PDF is byte-for-byte reproducible.
fn file_id(key: &str) -> Vec<u8> {
    let fnv = |seed: u64| key.bytes().fold(seed, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    let mut id = fnv(0xcbf2_9ce4_8422_2325).to_be_bytes().to_vec();
    id.extend_from_slice(&fnv(0x6c62_272e_07bb_0142).to_be_bytes());
    id
}

/// `text` broken into lines no wider than `width`: at spaces, inside a word only when the word
/// alone is too wide; newlines start new lines (blank ones are dropped).
pub(crate) fn wrap(font: Font, size: i32, text: &str, width: i32) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.split('\n').filter(|p| !p.trim().is_empty()) {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let candidate = if line.is_empty() { word.to_owned() } else { format!("{line} {word}") };
            if font.text_width(&candidate, size) <= width {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            for ch in word.chars() {
                line.push(ch);
                if line.chars().count() > 1 && font.text_width(&line, size) > width {
                    line.pop();
                    lines.push(std::mem::take(&mut line));
                    line.push(ch);
                }
            }
        }
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// A column of a [`Table`].
pub(crate) struct Column {
    pub title: String,
    /// Width in pt/100; 0 takes what the other columns leave.
    pub width: i32,
    pub align: Align,
}

impl Column {
    pub fn new(title: impl Into<String>, width: i32, align: Align) -> Self {
        Self { title: title.into(), width, align }
    }
}

/// Cell padding, horizontal and vertical.
pub(crate) const PAD_X: i32 = 400;
const PAD_Y: i32 = 300;

/// A table across the page's width; its header is repeated on every page it runs onto.
pub(crate) struct Table {
    columns: Vec<Column>,
    /// Left edge and width of each column.
    spans: Vec<(i32, i32)>,
}

impl Table {
    pub fn new(columns: Vec<Column>) -> Self {
        let fixed: i32 = columns.iter().map(|c| c.width).sum();
        let mut x = LEFT;
        let mut spans = Vec::with_capacity(columns.len());
        for c in &columns {
            let w = if c.width == 0 { (WIDTH - fixed).max(PAD_X * 4) } else { c.width };
            spans.push((x, w));
            x += w;
        }
        Self { columns, spans }
    }

    fn row_height(lines: usize) -> i32 {
        (i32::try_from(lines).unwrap_or(1) - 1) * leading(BODY) + BODY * 3 / 4 + 2 * PAD_Y
    }

    /// The header row (shaded, bold); kept with at least one row after it.
    pub fn header(&self, doc: &mut Layout) {
        let h = Self::row_height(1);
        doc.ensure(2 * h);
        let top = doc.y;
        doc.rect(LEFT, top, WIDTH, h, HEADER_FILL, true);
        let titles: Vec<String> = self.columns.iter().map(|c| c.title.clone()).collect();
        self.cells(doc, top, Font::Bold, &titles.iter().map(|t| vec![t.clone()]).collect::<Vec<_>>());
        doc.y = top - h;
        doc.rule(LEFT, RIGHT, 60, RULE);
    }

    /// One row; cells wrap within their column. A row that does not fit starts a new page,
    /// which repeats the header.
    pub fn row(&self, doc: &mut Layout, font: Font, cells: &[String]) {
        let wrapped: Vec<Vec<String>> = self
            .spans
            .iter()
            .zip(cells.iter().map(String::as_str).chain(std::iter::repeat("")))
            .map(|(&(_, w), text)| wrap(font, BODY, text, w - 2 * PAD_X))
            .collect();
        let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1);
        let h = Self::row_height(lines);
        if doc.ensure(h) {
            self.header(doc);
        }
        let top = doc.y;
        self.cells(doc, top, font, &wrapped);
        doc.y = top - h;
        doc.rule(LEFT, RIGHT, 40, HAIRLINE);
    }

    fn cells(&self, doc: &mut Layout, top: i32, font: Font, cells: &[Vec<String>]) {
        for ((column, &(x, w)), lines) in self.columns.iter().zip(&self.spans).zip(cells) {
            let x = match column.align {
                Align::Left => x + PAD_X,
                Align::Right => x + w - PAD_X,
            };
            let mut line_top = top - PAD_Y;
            for l in lines {
                doc.text(x, line_top, font, BODY, BLACK, l, column.align);
                line_top -= leading(BODY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces_and_inside_overlong_words() {
        let w = Font::Regular.text_width("Shortfall against", BODY);
        assert_eq!(
            wrap(Font::Regular, BODY, "Shortfall against the monthly minimum", w),
            ["Shortfall against", "the monthly", "minimum"]
        );
        let narrow = Font::Regular.text_width("0000", BODY);
        assert_eq!(wrap(Font::Regular, BODY, "000000000", narrow), ["0000", "0000", "0"]);
        assert_eq!(wrap(Font::Regular, BODY, "line one\n\nline two", WIDTH), ["line one", "line two"]);
        assert_eq!(wrap(Font::Regular, BODY, "", WIDTH), [""]);
    }

    #[test]
    fn a_long_table_runs_onto_more_pages() {
        let mut doc = Layout::new("TEST");
        let table = Table::new(vec![Column::new("A", 0, Align::Left), Column::new("B", 8000, Align::Right)]);
        table.header(&mut doc);
        for i in 0..120 {
            table.row(&mut doc, Font::Regular, &[format!("row {i}"), "1.00".to_owned()]);
        }
        assert!(doc.pages.len() >= 3, "{} pages", doc.pages.len());
        assert!(doc.y >= BOTTOM);
    }

    #[test]
    fn the_file_id_depends_on_the_key_only() {
        assert_eq!(file_id("INV/25-26/000001"), file_id("INV/25-26/000001"));
        assert_ne!(file_id("INV/25-26/000001"), file_id("INV/25-26/000002"));
        assert_eq!(file_id("x").len(), 16);
        assert!(pdf_date("2026-02-01").is_some());
        assert!(pdf_date("2026-13-01").is_none());
        assert!(pdf_date("").is_none());
    }
}
