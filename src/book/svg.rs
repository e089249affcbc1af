//! A small SVG writer for the figures that are grids or diagrams rather than plots (heatmaps,
//! the mask illustration, the data-flow diagram). Coordinates are in pixels of the view box.

use std::fmt::Write as _;

use super::preprocess::html_escape;

/// Horizontal anchor of a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn as_str(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

/// An SVG document being written.
pub struct Svg {
    width: f64,
    height: f64,
    body: String,
}

/// Formats a coordinate with at most two decimals, dropping trailing zeros.
fn n(x: f64) -> String {
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

impl Svg {
    /// An empty white canvas; `title` becomes the accessible name of the image.
    pub fn new(width: f64, height: f64, title: &str) -> Svg {
        let mut svg = Svg {
            width,
            height,
            body: String::new(),
        };
        let _ = write!(svg.body, "<title>{}</title>", html_escape(title));
        svg.rect(0.0, 0.0, width, height, "#ffffff", None, 0.0);
        svg
    }

    /// A filled rectangle, optionally outlined, with corner radius `rx`.
    #[allow(clippy::too_many_arguments)]
    pub fn rect(
        &mut self,
        x: f64,
        y: f64,
        w: f64,
        h: f64,
        fill: &str,
        stroke: Option<&str>,
        rx: f64,
    ) {
        let _ = write!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"",
            n(x),
            n(y),
            n(w),
            n(h)
        );
        if let Some(stroke) = stroke {
            let _ = write!(self.body, " stroke=\"{stroke}\" stroke-width=\"1.2\"");
        }
        if rx > 0.0 {
            let _ = write!(self.body, " rx=\"{}\"", n(rx));
        }
        self.body.push_str("/>");
    }

    /// A grid cell: a rectangle with no outline (kept short, heatmaps have many).
    pub fn cell(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str) {
        let _ = write!(
            self.body,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\"/>",
            n(x),
            n(y),
            n(w),
            n(h)
        );
    }

    /// Many unoutlined cells `(x, y, w, h, fill)`, written as one path per colour so that a
    /// heatmap of thousands of cells stays small.
    pub fn cells(&mut self, cells: impl IntoIterator<Item = (f64, f64, f64, f64, String)>) {
        let mut by_colour: std::collections::BTreeMap<String, String> = Default::default();
        for (x, y, w, h, fill) in cells {
            let d = by_colour.entry(fill).or_default();
            let _ = write!(d, "M{} {}h{}v{}h{}z", n(x), n(y), n(w), n(h), n(-w));
        }
        for (fill, d) in by_colour {
            let _ = write!(self.body, "<path fill=\"{fill}\" d=\"{d}\"/>");
        }
    }

    /// A straight line.
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str, width: f64) {
        let _ = write!(
            self.body,
            "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{stroke}\" stroke-width=\"{}\"/>",
            n(x1),
            n(y1),
            n(x2),
            n(y2),
            n(width)
        );
    }

    /// A polyline through `points`, with an arrowhead at the last point.
    pub fn arrow(&mut self, points: &[(f64, f64)], stroke: &str) {
        if points.len() < 2 {
            return;
        }
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{},{}", n(*x), n(*y)))
            .collect();
        let _ = write!(
            self.body,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"1.6\"/>",
            path.join(" ")
        );
        let (x2, y2) = points[points.len() - 1];
        let (x1, y1) = points[points.len() - 2];
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-9);
        let (ux, uy) = (dx / len, dy / len);
        let (size, half) = (9.0, 4.5);
        let base = (x2 - ux * size, y2 - uy * size);
        let left = (base.0 - uy * half, base.1 + ux * half);
        let right = (base.0 + uy * half, base.1 - ux * half);
        let _ = write!(
            self.body,
            "<polygon points=\"{},{} {},{} {},{}\" fill=\"{stroke}\"/>",
            n(x2),
            n(y2),
            n(left.0),
            n(left.1),
            n(right.0),
            n(right.1)
        );
    }

    /// A circle.
    pub fn circle(&mut self, cx: f64, cy: f64, r: f64, fill: &str, stroke: &str) {
        let _ = write!(
            self.body,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{}\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"1.4\"/>",
            n(cx),
            n(cy),
            n(r)
        );
    }

    /// Text at (x, y) (the baseline), in the book's sans-serif face.
    pub fn text(&mut self, x: f64, y: f64, s: &str, size: f64, anchor: Anchor, style: TextStyle) {
        let weight = if style.bold {
            " font-weight=\"bold\""
        } else {
            ""
        };
        let italic = if style.italic {
            " font-style=\"italic\""
        } else {
            ""
        };
        let _ = write!(
            self.body,
            "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"{}\" fill=\"{}\"{weight}{italic}>{}</text>",
            n(x),
            n(y),
            n(size),
            anchor.as_str(),
            style.fill,
            html_escape(s)
        );
    }

    /// Text rotated by -90 degrees around (x, y), for vertical axis labels.
    pub fn vertical_text(&mut self, x: f64, y: f64, s: &str, size: f64) {
        let _ = write!(
            self.body,
            "<text x=\"{x}\" y=\"{y}\" font-size=\"{}\" text-anchor=\"middle\" fill=\"#222\" transform=\"rotate(-90 {x} {y})\">{}</text>",
            n(size),
            html_escape(s),
            x = n(x),
            y = n(y)
        );
    }

    /// Text rotated by `degrees` (negative: counter-clockwise) around its start (x, y), for
    /// column labels of narrow cells.
    pub fn rotated_text(&mut self, x: f64, y: f64, s: &str, size: f64, degrees: f64) {
        let _ = write!(
            self.body,
            "<text x=\"{x}\" y=\"{y}\" font-size=\"{}\" text-anchor=\"start\" fill=\"#222222\" transform=\"rotate({} {x} {y})\">{}</text>",
            n(size),
            n(degrees),
            html_escape(s),
            x = n(x),
            y = n(y)
        );
    }

    /// The finished document.
    pub fn finish(self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"Helvetica, Arial, sans-serif\" role=\"img\">{}</svg>\n",
            self.body,
            w = n(self.width),
            h = n(self.height)
        )
    }
}

/// Colour, weight and slant of a text.
#[derive(Clone, Copy, Debug)]
pub struct TextStyle {
    pub fill: &'static str,
    pub bold: bool,
    pub italic: bool,
}

impl TextStyle {
    pub const PLAIN: TextStyle = TextStyle {
        fill: "#222222",
        bold: false,
        italic: false,
    };
    pub const BOLD: TextStyle = TextStyle {
        fill: "#222222",
        bold: true,
        italic: false,
    };
    pub const MUTED: TextStyle = TextStyle {
        fill: "#555555",
        bold: false,
        italic: true,
    };
    pub const WHITE: TextStyle = TextStyle {
        fill: "#ffffff",
        bold: false,
        italic: false,
    };
}

/// Linear interpolation between colour stops, `t` in [0, 1].
fn ramp(stops: &[(u8, u8, u8)], t: f64) -> (u8, u8, u8) {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let scaled = t * (stops.len() - 1) as f64;
    let i = (scaled.floor() as usize).min(stops.len() - 2);
    let f = scaled - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    let (a, b) = (stops[i], stops[i + 1]);
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

fn hex((r, g, b): (u8, u8, u8)) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The stops of [`sequential`]: white to deep blue.
const SEQUENTIAL: [(u8, u8, u8); 5] = [
    (255, 255, 255),
    (198, 219, 239),
    (107, 174, 214),
    (33, 113, 181),
    (8, 48, 107),
];

/// Sequential colour for a weight in [0, 1]: white to deep blue.
pub fn sequential(t: f64) -> String {
    hex(ramp(&SEQUENTIAL, t))
}

/// Diverging colour for a value in [-1, 1]: blue, white, red.
pub fn diverging(v: f64) -> String {
    hex(ramp(
        &[
            (33, 102, 172),
            (146, 197, 222),
            (247, 247, 247),
            (244, 165, 130),
            (178, 24, 43),
        ],
        (v + 1.0) / 2.0,
    ))
}

/// True when a cell of colour [`sequential`]`(t)` needs white text: white stands out more
/// against it than the dark text colour (`#222222`) does. The two meet near t = 0.67, where
/// each has a contrast of about 4:1 with the cell.
pub fn dark(t: f64) -> bool {
    let cell = ramp(&SEQUENTIAL, t);
    contrast(cell, (255, 255, 255)) > contrast(cell, (0x22, 0x22, 0x22))
}

/// The contrast ratio of two colours by WCAG 2.x, from 1 (the same) to 21 (black on white).
pub fn contrast(a: (u8, u8, u8), b: (u8, u8, u8)) -> f64 {
    // relative luminance: each sRGB channel made linear, then weighted by the eye's response
    let luminance = |(r, g, b): (u8, u8, u8)| {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
    };
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_text_is_escaped() {
        let mut svg = Svg::new(10.0, 20.0, "a < b");
        svg.text(1.5, 2.0, "x & y", 12.0, Anchor::Middle, TextStyle::PLAIN);
        let s = svg.finish();
        assert!(s.contains("<title>a &lt; b</title>"));
        assert!(s.contains("x=\"1.5\" y=\"2\""));
        assert!(s.contains(">x &amp; y</text>"));
    }

    #[test]
    fn an_arrowhead_is_9_px_long_9_px_wide_and_points_along_the_last_segment() {
        let head = |points: &[(f64, f64)]| {
            let mut svg = Svg::new(50.0, 50.0, "a");
            svg.arrow(points, "#333");
            let s = svg.finish();
            let open = "<polygon points=\"";
            let at = s.find(open).expect("an arrowhead") + open.len();
            s[at..at + s[at..].find('"').unwrap()].to_string()
        };
        // tip, then the base's two corners 4.5 px either side of the shaft, 9 px back
        assert_eq!(head(&[(0.0, 0.0), (20.0, 0.0)]), "20,0 11,4.5 11,-4.5");
        assert_eq!(head(&[(10.0, 40.0), (10.0, 10.0)]), "10,10 14.5,19 5.5,19");
        // a 3-4-5 slope: the back is 5.4 and 7.2 px off the tip, the sides 3.6 and 2.7
        assert_eq!(head(&[(0.0, 0.0), (30.0, 40.0)]), "30,40 21,35.5 28.2,30.1");
        // only the last segment sets the direction
        let bent = [
            (0.0, 0.0),
            (0.0, 10.0),
            (10.0, 10.0),
            (10.0, 20.0),
            (30.0, 20.0),
        ];
        assert_eq!(head(&bent), "30,20 21,24.5 21,15.5");
        let mut svg = Svg::new(50.0, 50.0, "a");
        svg.arrow(&bent, "#333");
        assert!(svg
            .finish()
            .contains("<polyline points=\"0,0 0,10 10,10 10,20 30,20\" fill=\"none\" stroke=\"#333\" stroke-width=\"1.6\"/>"));
        // one point is no arrow at all
        let mut svg = Svg::new(50.0, 50.0, "a");
        svg.arrow(&[(1.0, 1.0)], "#333");
        let s = svg.finish();
        assert!(!s.contains("<polyline") && !s.contains("<polygon"), "{s}");
    }

    #[test]
    fn cell_text_keeps_the_better_contrast_and_at_least_3_to_1() {
        // WCAG's end points: black on white is 21:1, a colour on itself 1:1
        assert!((contrast((0, 0, 0), (255, 255, 255)) - 21.0).abs() < 1e-9);
        assert!((contrast((255, 255, 255), (0, 0, 0)) - 21.0).abs() < 1e-9);
        assert!((contrast((92, 162, 207), (92, 162, 207)) - 1.0).abs() < 1e-12);
        // #767676 on white is the lightest grey with 4.5:1, WCAG AA's bar for body text
        // (4.54:1 as WebAIM's contrast checker gives it; #777777 falls just short, 4.48:1)
        assert_eq!(
            format!("{:.2}", contrast((0x76, 0x76, 0x76), (255, 255, 255))),
            "4.54"
        );
        assert_eq!(
            format!("{:.2}", contrast((0x77, 0x77, 0x77), (255, 255, 255))),
            "4.48"
        );
        // a lighter channel always stands out more against black, through the knee of the
        // sRGB curve (at 10/255) too
        type Channel = fn(u8) -> (u8, u8, u8);
        let colours: [Channel; 4] = [|v| (v, v, v), |v| (v, 0, 0), |v| (0, v, 0), |v| (0, 0, v)];
        for level in 1..=255u8 {
            for colour in colours {
                let (lower, higher) = (colour(level - 1), colour(level));
                assert!(
                    contrast(higher, (0, 0, 0)) > contrast(lower, (0, 0, 0)),
                    "{lower:?} to {higher:?}"
                );
            }
        }
        let (white, text) = ((255, 255, 255), (0x22, 0x22, 0x22));
        let mut switched = Vec::new();
        for i in 0..=1000 {
            let t = f64::from(i) / 1000.0;
            let cell = ramp(&SEQUENTIAL, t);
            assert_eq!(hex(cell), sequential(t));
            let (on_white, on_text) = (contrast(cell, white), contrast(cell, text));
            let chosen = if dark(t) { on_white } else { on_text };
            assert!(chosen >= on_white.min(on_text), "t = {t}");
            // the book's figures promise 3:1 for every number printed on a cell
            assert!(chosen >= 3.0, "t = {t}: {chosen:.2}:1");
            if i > 0 && dark(t) != dark(t - 0.001) {
                switched.push(t);
            }
        }
        // one switch, from dark text on light cells to white text on dark ones
        assert!(!dark(0.0) && dark(1.0));
        assert_eq!(switched.len(), 1, "{switched:?}");
        assert!((0.6..0.8).contains(&switched[0]), "{switched:?}");
    }

    #[test]
    fn a_rectangle_has_rounded_corners_only_when_asked() {
        let mut svg = Svg::new(10.0, 10.0, "r");
        svg.rect(1.0, 2.0, 3.0, 4.0, "#fff", None, 0.0);
        svg.rect(1.0, 2.0, 3.0, 4.0, "#fff", Some("#000"), 2.5);
        let s = svg.finish();
        assert!(
            s.contains("<rect x=\"1\" y=\"2\" width=\"3\" height=\"4\" fill=\"#fff\"/>"),
            "{s}"
        );
        assert!(
            s.contains("<rect x=\"1\" y=\"2\" width=\"3\" height=\"4\" fill=\"#fff\" stroke=\"#000\" stroke-width=\"1.2\" rx=\"2.5\"/>"),
            "{s}"
        );
    }

    #[test]
    fn colour_ramps_hit_their_ends() {
        assert_eq!(sequential(0.0), "#ffffff");
        assert_eq!(sequential(1.0), "#08306b");
        assert_eq!(diverging(-1.0), "#2166ac");
        assert_eq!(diverging(0.0), "#f7f7f7");
    }
}
