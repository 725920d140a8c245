//! The two fonts documents use: the PDF standard (base-14) Helvetica and Helvetica-Bold, which
//! every PDF reader has, so nothing is embedded. Text is encoded in WinAnsiEncoding (Windows-1252)
//! and measured with the fonts' Adobe AFM advance widths, for right alignment and wrapping.

use pdf_writer::Name;

/// A face of Helvetica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Font {
    Regular,
    Bold,
}

impl Font {
    /// The resource name the page content uses.
    pub(crate) fn resource(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
        }
    }

    /// The base-14 font's PostScript name.
    pub(crate) fn base_font(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"Helvetica"),
            Font::Bold => Name(b"Helvetica-Bold"),
        }
    }

    fn widths(self) -> &'static [u16; 224] {
        match self {
            Font::Regular => &HELVETICA,
            Font::Bold => &HELVETICA_BOLD,
        }
    }

    /// The advance width of WinAnsi-encoded `text` at `size`, in the unit of `size`.
    pub(crate) fn width(self, text: &[u8], size: i32) -> i32 {
        let widths = self.widths();
        let em: i64 = text.iter().map(|&b| i64::from(widths[usize::from(b.max(0x20) - 0x20)])).sum();
        i32::try_from(em * i64::from(size) / 1000).unwrap_or(i32::MAX)
    }

    /// The width of `text` (encoded first) at `size`.
    pub(crate) fn text_width(self, text: &str, size: i32) -> i32 {
        self.width(&encode(text), size)
    }
}

/// `text` in WinAnsiEncoding. The rupee sign, which the base-14 fonts lack, becomes `Rs.`; a
/// minus sign a hyphen; control characters spaces; anything else the encoding lacks `?`.
pub(crate) fn encode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\u{20B9}' => out.extend_from_slice(b"Rs."),
            '\u{2212}' | '\u{2010}' | '\u{2011}' => out.push(b'-'),
            c if c.is_control() => out.push(b' '),
            c => out.push(win_ansi(c).unwrap_or(b'?')),
        }
    }
    out
}

/// The Windows-1252 byte of `c`, if it has one.
fn win_ansi(c: char) -> Option<u8> {
    let code = u32::from(c);
    if (0x20..0x7f).contains(&code) || (0xa0..=0xff).contains(&code) {
        return u8::try_from(code).ok();
    }
    let byte = match c {
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8a,
        '‹' => 0x8b,
        'Œ' => 0x8c,
        'Ž' => 0x8e,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9a,
        '›' => 0x9b,
        'œ' => 0x9c,
        'ž' => 0x9e,
        'Ÿ' => 0x9f,
        _ => return None,
    };
    Some(byte)
}

// Advance widths in 1/1000 em of WinAnsi codes 0x20..=0xFF, from Adobe's Core 14 AFM files
// (Helvetica.afm and Helvetica-Bold.afm); codes the encoding leaves undefined get a bullet's width.
#[rustfmt::skip]
static HELVETICA: [u16; 224] = [
    // 0x20
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 350,
    // 0x80
    556, 350, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 350, 611, 350,
    350, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 350, 500, 667,
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 556, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
];

#[rustfmt::skip]
static HELVETICA_BOLD: [u16; 224] = [
    // 0x20
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 350,
    // 0x80
    556, 350, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 350, 611, 350,
    350, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 350, 500, 667,
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 333, 737, 333,
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278,
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_win_ansi_and_replaces_what_it_lacks() {
        assert_eq!(encode("MRI, tier 1 (1–100)"), b"MRI, tier 1 (1\x96100)");
        assert_eq!(encode("₹5 × 2"), b"Rs.5 \xd7 2");
        assert_eq!(encode("Café\tक"), b"Caf\xe9 ?");
    }

    #[test]
    fn measures_with_the_afm_widths() {
        // "Hi": H 722 + i 222 (regular), H 722 + i 278 (bold), in 1/1000 em: at size 1000, the same.
        assert_eq!(Font::Regular.text_width("Hi", 1000), 944);
        assert_eq!(Font::Bold.text_width("Hi", 1000), 1000);
        assert_eq!(Font::Regular.text_width("0123456789", 1000), 5560);
        assert_eq!(Font::Regular.text_width("", 1000), 0);
    }
}
