//! The figures as a reader sees them, checked from the SVG the book ships: every element lies
//! inside the picture, which no empty band more than 60 px wide crosses, no two labels are
//! drawn over each other, a label placed in a box or a cell fits inside it (and in a square
//! cell, is centred in it), the data-flow diagram's arrows join its boxes as §3 does (each arrow
//! read as the box, circle or label it starts and ends on, and each box coloured as its legend
//! says), and the cells of a heatmap never cover each other (beyond the 0.3 px by which a colour
//! bar's strips overlap so that no seam shows).
//!
//! The figures are also read back as a reader reads them, by their own legend and tick labels
//! alone. Each plot's axes are fitted through their tick labels (linear or logarithmic, every
//! tick within 0.75 px of the fit, so a mislabelled tick fails), each series is found by the
//! colour and kind of its legend swatch, and every drawn point must lie within a pixel of its
//! data: the positional-encoding curves are the columns of `sinusoidal` their legend names; the
//! learning-rate curves are Eq. 3 (`lrate`) for the d_model and warmup of their entries; the
//! label-smoothing bars are `smoothed_targets` for the target, vocabulary and eps of the title;
//! the training curves are the loss and held-out columns of `book/runs/copy.csv` and
//! `translate.csv`; the layer timings are `book/runs/table1.json`. The two measured figures are
//! held to their own claims within their sampling error: the sample variance of q · k reads as
//! d_k (and 1 once scaled), and the largest softmax weight, with and without the scale, as the
//! same experiment run independently through the library.
//!
//! The heatmaps are read the same way, by their colours on their own legend: the
//! positional-encoding heatmap gives PE(pos, j) in every cell, within the legend's resolution;
//! each row of the untrained attention heatmap (by its printed numbers) and of the trained
//! model's maps (by their colours on the weight legend) sums to one; the untrained heatmap's
//! printed weights are those of the experiment its subtitle states, run through the library;
//! and the masked decoder self-attention shows no weight on a later position. The causal-mask
//! figure's three panels agree with each other (symmetric scores, -inf exactly after the
//! diagonal, weights that are the softmax of the printed row), and every number printed on a
//! coloured cell has at least WCAG's 3:1 contrast with it.
//!
//! Text is measured without a font: a character is taken as half the font size wide (a narrow
//! one, like `i` or a space, as 0.3), and a line as 0.7 of the font size above the baseline and
//! 0.15 below. Real Helvetica and Arial run wider than that, so a label this test passes may
//! still touch its neighbour in a browser (`book/check-rendered.sh` looks at the page itself),
//! but one it refuses does overlap.

use aiayn::attention::scaled_dot_product_attention;
use aiayn::book::figures;
use aiayn::embedding::Embedding;
use aiayn::multi_head::MultiHeadAttention;
use aiayn::positional::sinusoidal;
use aiayn::softmax::softmax_rows;
use aiayn::train::label_smoothing::{smoothed_targets, Spread};
use aiayn::train::schedule::lrate;
use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A convex polygon, corners in order.
type Poly = Vec<(f64, f64)>;

/// One label: its text and the polygon it covers.
#[derive(Debug)]
struct Label {
    text: String,
    poly: Poly,
    /// Where it is anchored (before any rotation).
    at: (f64, f64),
    rotated: bool,
    /// The height it stands for beside a vertical axis: plotters centres a tick label on its
    /// tick (dy = 0.5ex); any other label is taken at the middle of a digit, 0.35 of the font
    /// size above the baseline.
    centre: f64,
    /// Its colour.
    fill: String,
}

/// A rectangle: x, y, width, height.
#[derive(Clone, Copy, Debug)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

impl Rect {
    fn contains(&self, (px, py): (f64, f64), slack: f64) -> bool {
        px >= self.x - slack
            && px <= self.x + self.w + slack
            && py >= self.y - slack
            && py <= self.y + self.h + slack
    }

    fn on_edge(&self, p: (f64, f64), slack: f64) -> bool {
        let inner = Rect {
            x: self.x + slack,
            y: self.y + slack,
            w: self.w - 2.0 * slack,
            h: self.h - 2.0 * slack,
        };
        self.contains(p, slack) && !inner.contains(p, 0.0)
    }

    fn corners(&self) -> Poly {
        vec![
            (self.x, self.y),
            (self.x + self.w, self.y),
            (self.x + self.w, self.y + self.h),
            (self.x, self.y + self.h),
        ]
    }
}

/// What a figure draws, read back from its SVG.
#[derive(Default, Debug)]
struct Drawing {
    width: f64,
    height: f64,
    labels: Vec<Label>,
    /// Outlined or filled rectangles (not the white background).
    rects: Vec<Rect>,
    /// Whether each rectangle has a stroke (a box of a diagram rather than a cell).
    boxed: Vec<bool>,
    /// Each rectangle's fill.
    rect_fills: Vec<String>,
    /// Heatmap cells written as path squares, and their fills.
    cells: Vec<Rect>,
    cell_fills: Vec<String>,
    circles: Vec<(f64, f64, f64)>,
    /// Every polyline, circle and triangle, with its colour: what a plot draws its data with.
    marks: Vec<Mark>,
    /// Every point of every line, polyline and polygon.
    points: Vec<(f64, f64)>,
    /// The tip of every arrowhead (a triangle right after a polyline ending there).
    arrow_tips: Vec<(f64, f64)>,
    /// Every arrow: its points, from the start to the tip, and its colour.
    arrows: Vec<(Poly, String)>,
    /// Every straight line, by its two ends.
    lines: Vec<((f64, f64), (f64, f64))>,
}

/// What a plotted series is drawn with.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Line,
    Dot,
    Triangle,
}

/// A polyline, a circle or a triangle: its colour (a line's stroke, a marker's fill, with an
/// opacity other than 1 appended as in `#000000/0.5`) and its points (a marker's one point is
/// its centre).
#[derive(Debug)]
struct Mark {
    kind: Kind,
    colour: String,
    points: Vec<(f64, f64)>,
    /// A line's stroke width (0 for a marker).
    width: f64,
}

/// The value of `name="..."` in one tag.
fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let key = format!(" {name}=\"");
    let at = tag.find(&key)? + key.len();
    let len = tag[at..].find('"')?;
    Some(&tag[at..at + len])
}

fn num(tag: &str, name: &str) -> f64 {
    let v = attr(tag, name).unwrap_or_else(|| panic!("no {name} in {tag}"));
    v.trim_end_matches("px")
        .parse()
        .unwrap_or_else(|_| panic!("{name}={v:?} in {tag}"))
}

/// The colour `name` (stroke or fill) of a tag, with its opacity unless that is 1.
fn paint(tag: &str, name: &str) -> String {
    let colour = attr(tag, name).unwrap_or("none");
    match attr(tag, "opacity") {
        Some(o) if o != "1" => format!("{colour}/{o}"),
        _ => colour.to_string(),
    }
}

fn point_list(s: &str) -> Vec<(f64, f64)> {
    s.split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap_or_else(|| panic!("point {p:?}"));
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The estimated width of `text` at font size `size`.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars()
        .map(|c| {
            if " .,:;'|!ilj()[]".contains(c) {
                0.3
            } else {
                0.5
            }
        })
        .sum::<f64>()
        * size
}

/// The polygon a `<text>` covers, from its attributes and content.
fn label(tag: &str, content: &str) -> Label {
    let (x, y, size) = (num(tag, "x"), num(tag, "y"), num(tag, "font-size"));
    let text = unescape(content.trim());
    let w = text_width(&text, size);
    let left = match attr(tag, "text-anchor").unwrap_or("start") {
        "start" => x,
        "middle" => x - w / 2.0,
        "end" => x - w,
        other => panic!("text-anchor {other:?}"),
    };
    // the baseline, from the vertical shift plotters writes
    let baseline = match attr(tag, "dy") {
        None => y,
        Some("0.76em") => y + 0.76 * size, // y is the top
        Some("0.5ex") => y + 0.25 * size,  // y is the middle
        Some("-0.5ex") => y - 0.25 * size,
        Some(other) => panic!("dy {other:?} in {tag}"),
    };
    let centre = match attr(tag, "dy") {
        Some("0.5ex") => y,
        _ => baseline - 0.35 * size,
    };
    let (top, bottom) = (baseline - 0.7 * size, baseline + 0.15 * size);
    let mut poly = vec![
        (left, top),
        (left + w, top),
        (left + w, bottom),
        (left, bottom),
    ];
    let mut rotated = false;
    if let Some(t) = attr(tag, "transform") {
        let inner = t
            .strip_prefix("rotate(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("transform {t:?}"));
        let v: Vec<f64> = inner
            .split([' ', ','])
            .filter(|p| !p.is_empty())
            .map(|p| p.parse().unwrap_or_else(|_| panic!("transform {t:?}")))
            .collect();
        let (a, cx, cy) = (v[0].to_radians(), v[1], v[2]);
        for p in &mut poly {
            let (dx, dy) = (p.0 - cx, p.1 - cy);
            *p = (
                cx + dx * a.cos() - dy * a.sin(),
                cy + dx * a.sin() + dy * a.cos(),
            );
        }
        rotated = true;
    }
    Label {
        text,
        poly,
        at: (x, y),
        rotated,
        centre,
        fill: attr(tag, "fill").unwrap_or("#000000").to_string(),
    }
}

/// The squares of a path made of `M x y h w v h h -w z` runs (the heatmap writer's cells).
fn path_cells(d: &str) -> Option<Vec<Rect>> {
    let mut cells = Vec::new();
    for part in d.split('M').filter(|p| !p.is_empty()) {
        let part = part.strip_suffix('z')?;
        let (xy, rest) = part.split_once('h')?;
        let (x, y) = xy.split_once(' ')?;
        let (w, rest) = rest.split_once('v')?;
        let (h, back) = rest.split_once('h')?;
        let (w, h): (f64, f64) = (w.parse().ok()?, h.parse().ok()?);
        if back.parse::<f64>().ok()? != -w {
            return None;
        }
        cells.push(Rect {
            x: x.parse().ok()?,
            y: y.parse().ok()?,
            w,
            h,
        });
    }
    Some(cells)
}

fn read(svg: &str) -> Drawing {
    let head = &svg[..svg.find('>').unwrap()];
    let mut d = Drawing {
        width: num(head, "width"),
        height: num(head, "height"),
        ..Drawing::default()
    };
    let mut last_polyline_end = None;
    let mut rest = &svg[head.len()..];
    while let Some(open) = rest.find('<') {
        rest = &rest[open..];
        let close = rest.find('>').unwrap();
        let tag = &rest[..close];
        let name = tag[1..].split([' ', '/']).next().unwrap_or("");
        let after = &rest[close + 1..];
        match name {
            "text" => {
                let end = after.find("</text>").unwrap();
                d.labels.push(label(tag, &after[..end]));
            }
            "rect" => {
                let r = Rect {
                    x: num(tag, "x"),
                    y: num(tag, "y"),
                    w: num(tag, "width"),
                    h: num(tag, "height"),
                };
                let background = r.x == 0.0 && r.y == 0.0 && r.w == d.width && r.h == d.height;
                if !background {
                    d.points.extend(r.corners());
                    d.rects.push(r);
                    d.boxed
                        .push(attr(tag, "stroke").is_some_and(|s| s != "none"));
                    d.rect_fills
                        .push(attr(tag, "fill").unwrap_or("").to_string());
                }
            }
            "path" => {
                let path = attr(tag, "d").unwrap();
                match path_cells(path) {
                    Some(cells) => {
                        for c in &cells {
                            d.points.extend(c.corners());
                        }
                        let fill = attr(tag, "fill").unwrap_or("");
                        d.cell_fills
                            .extend(std::iter::repeat_n(fill.to_string(), cells.len()));
                        d.cells.extend(cells);
                    }
                    None => panic!("a path that is not cells: {}", &tag[..tag.len().min(120)]),
                }
            }
            "circle" => {
                let (cx, cy, r) = (num(tag, "cx"), num(tag, "cy"), num(tag, "r"));
                d.points.extend([(cx - r, cy - r), (cx + r, cy + r)]);
                d.circles.push((cx, cy, r));
                d.marks.push(Mark {
                    kind: Kind::Dot,
                    colour: paint(tag, "fill"),
                    points: vec![(cx, cy)],
                    width: 0.0,
                });
            }
            "line" => {
                let ends = (
                    (num(tag, "x1"), num(tag, "y1")),
                    (num(tag, "x2"), num(tag, "y2")),
                );
                d.points.extend([ends.0, ends.1]);
                d.lines.push(ends);
            }
            "polyline" => {
                let p = point_list(attr(tag, "points").unwrap());
                last_polyline_end = p.last().copied();
                d.points.extend(&p);
                d.marks.push(Mark {
                    kind: Kind::Line,
                    colour: paint(tag, "stroke"),
                    points: p,
                    width: attr(tag, "stroke-width").map_or(1.0, |w| w.parse().unwrap()),
                });
            }
            "polygon" => {
                let p = point_list(attr(tag, "points").unwrap());
                if p.len() == 3 && last_polyline_end == p.first().copied() {
                    d.arrow_tips.push(p[0]);
                    let line = d.marks.last().expect("the arrow's line");
                    d.arrows.push((line.points.clone(), line.colour.clone()));
                }
                if p.len() == 3 {
                    let centroid = p
                        .iter()
                        .fold((0.0, 0.0), |c, q| (c.0 + q.0 / 3.0, c.1 + q.1 / 3.0));
                    d.marks.push(Mark {
                        kind: Kind::Triangle,
                        colour: paint(tag, "fill"),
                        points: vec![centroid],
                        width: 0.0,
                    });
                }
                d.points.extend(p);
            }
            _ => {}
        }
        if !name.starts_with('/') && name != "polyline" {
            last_polyline_end = None; // an arrowhead follows its line at once
        }
        rest = after;
    }
    d
}

/// The smallest rectangle holding a polygon.
fn bounds(p: &Poly) -> Rect {
    let inf = f64::INFINITY;
    let (mut x0, mut y0, mut x1, mut y1) = (inf, inf, -inf, -inf);
    for &(x, y) in p {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    Rect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    }
}

/// Whether two convex polygons overlap by more than `slack` along every axis that could
/// separate them (the separating axis theorem).
fn overlap(a: &Poly, b: &Poly, slack: f64) -> bool {
    for poly in [a, b] {
        for i in 0..poly.len() {
            let (p, q) = (poly[i], poly[(i + 1) % poly.len()]);
            let (nx, ny) = (q.1 - p.1, p.0 - q.0);
            let len = (nx * nx + ny * ny).sqrt();
            if len == 0.0 {
                continue;
            }
            let project = |s: &Poly| {
                s.iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                        let t = (v.0 * nx + v.1 * ny) / len;
                        (lo.min(t), hi.max(t))
                    })
            };
            let ((a0, a1), (b0, b1)) = (project(a), project(b));
            if a1.min(b1) - a0.max(b0) <= slack {
                return false;
            }
        }
    }
    true
}

fn drawings() -> Vec<(&'static str, Drawing)> {
    figures::draw_all()
        .unwrap()
        .into_iter()
        .map(|(name, svg)| (name, read(&svg)))
        .collect()
}

#[test]
fn every_element_and_label_lies_inside_the_picture() {
    let mut problems = Vec::new();
    for (name, d) in drawings() {
        let inside = |(x, y): (f64, f64)| {
            (-0.5..=d.width + 0.5).contains(&x) && (-0.5..=d.height + 0.5).contains(&y)
        };
        if let Some(p) = d.points.iter().find(|&&p| !inside(p)) {
            problems.push(format!(
                "{name}: a shape reaches {p:?}, outside {} x {}",
                d.width, d.height
            ));
        }
        for l in &d.labels {
            if let Some(p) = l.poly.iter().find(|&&p| !inside(p)) {
                problems.push(format!("{name}: label {:?} reaches {p:?}", l.text));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The widest band, across the whole picture, that nothing is drawn in: along one axis, each
/// element given as the span it covers, in a picture `size` long.
fn widest_empty_band(mut spans: Vec<(f64, f64)>, size: f64) -> (f64, f64) {
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut reach, mut widest) = (0.0f64, (0.0, 0.0));
    for (from, to) in spans.into_iter().chain([(size, size)]) {
        if from - reach > widest.0 {
            widest = (from - reach, reach);
        }
        reach = reach.max(to);
    }
    widest
}

#[test]
fn no_empty_band_wider_than_60_px_crosses_a_picture() {
    let mut problems = Vec::new();
    for (name, d) in drawings() {
        let (mut across, mut down) = (Vec::new(), Vec::new());
        let boxes = d.labels.iter().map(|l| bounds(&l.poly));
        for r in boxes.chain(d.rects.iter().chain(&d.cells).copied()) {
            across.push((r.x, r.x + r.w));
            down.push((r.y, r.y + r.h));
        }
        for &(x, y) in &d.points {
            across.push((x, x));
            down.push((y, y));
        }
        for (axis, spans, size) in [("x", across, d.width), ("y", down, d.height)] {
            let (width, from) = widest_empty_band(spans, size);
            if width > 60.0 {
                problems.push(format!(
                    "{name}: nothing drawn for {width:.1} px from {axis} = {from:.1}"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn no_two_labels_are_drawn_over_each_other() {
    let mut problems = Vec::new();
    let mut pairs = 0;
    for (name, d) in drawings() {
        let labels: Vec<&Label> = d.labels.iter().filter(|l| !l.text.is_empty()).collect();
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                pairs += 1;
                if overlap(&a.poly, &b.poly, 0.5) {
                    problems.push(format!("{name}: {:?} and {:?} overlap", a.text, b.text));
                }
            }
        }
    }
    assert!(pairs > 10_000, "only {pairs} pairs of labels compared");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The smallest box or cell a label's anchor point is in.
fn host<'a>(d: &'a Drawing, l: &Label) -> Option<&'a Rect> {
    d.rects
        .iter()
        .chain(&d.cells)
        .filter(|r| r.contains(l.at, 0.0))
        .min_by(|a, b| (a.w * a.h).total_cmp(&(b.w * b.h)))
}

#[test]
fn a_label_placed_in_a_box_or_a_cell_fits_inside_it() {
    let mut problems = Vec::new();
    let mut fitted = 0;
    for (name, d) in drawings() {
        for l in d.labels.iter().filter(|l| !l.rotated) {
            if let Some(r) = host(&d, l) {
                fitted += 1;
                if let Some(p) = l.poly.iter().find(|&&p| !r.contains(p, 0.5)) {
                    problems.push(format!(
                        "{name}: label {:?} reaches {p:?}, outside its box {r:?}",
                        l.text
                    ));
                }
            }
        }
    }
    assert!(fitted > 100, "only {fitted} labels in boxes");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_label_in_a_square_cell_is_centred_in_it() {
    let mut problems = Vec::new();
    let mut centred = 0;
    for (name, d) in drawings() {
        for l in d.labels.iter().filter(|l| !l.rotated) {
            let Some(r) = host(&d, l).filter(|r| r.w == r.h) else {
                continue;
            };
            centred += 1;
            let b = bounds(&l.poly);
            let dx = b.x + b.w / 2.0 - (r.x + r.w / 2.0);
            let dy = l.centre - (r.y + r.h / 2.0);
            if dx.abs() > 1.0 || dy.abs() > 1.0 {
                problems.push(format!(
                    "{name}: label {:?} is {dx:.1} px right and {dy:.1} px below the centre of {r:?}",
                    l.text
                ));
            }
        }
    }
    assert!(centred > 200, "only {centred} labels in square cells");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The distance from p to the segment from a to b.
fn to_segment(p: (f64, f64), a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let t =
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy).max(1e-12)).clamp(0.0, 1.0);
    (p.0 - a.0 - t * dx).hypot(p.1 - a.1 - t * dy)
}

/// The data-flow diagram read as a reader reads it: its boxes named by their first line of text
/// (with the stack they are in, [E] or [D], and, for the add & norm boxes, their order from the
/// bottom), its circles (⊕ and the positional encoding's ~), and every arrow as the pair of
/// things it joins: a box or circle whose edge it starts or ends on (within 1 px), the label it
/// points at, or, for a residual connection, the arrow it branches off ("into X"). Each arrow
/// meets a box at the middle of an edge, runs in level and upright strokes and crosses nothing;
/// each box's text is centred in it and its colour is its legend entry's; each ⊕ and each
/// positional encoding is drawn whole, and each name sits by what it names.
#[test]
fn the_data_flow_diagram_joins_the_sub_layers_of_section_3_in_the_paper_s_order() {
    let d = figure("data-flow");
    let stack = |x: f64| if x < d.width / 2.0 { "[E]" } else { "[D]" };
    // the boxes with text, and their names
    let mut boxes: Vec<(Rect, String, String)> = Vec::new(); // (box, name, fill)
    for (k, r) in d.rects.iter().enumerate().filter(|&(k, _)| d.boxed[k]) {
        let mut lines: Vec<&Label> = d
            .labels
            .iter()
            .filter(|l| !l.rotated && host(&d, l).is_some_and(|h| std::ptr::eq(h, r)))
            .collect();
        if lines.is_empty() {
            continue;
        }
        lines.sort_by(|a, b| a.at.1.total_cmp(&b.at.1));
        // the lines are centred in the box, as a block
        let middle = lines.iter().map(|l| l.centre).sum::<f64>() / lines.len() as f64;
        for l in &lines {
            assert!(
                (bounds(&l.poly).x + bounds(&l.poly).w / 2.0 - (r.x + r.w / 2.0)).abs() <= 0.5,
                "{:?} is not centred across its box {r:?}",
                l.text
            );
        }
        assert!(
            (middle - (r.y + r.h / 2.0)).abs() <= 1.0,
            "the text of the box {:?} is centred at y = {middle}, not in the box {r:?}",
            lines[0].text
        );
        boxes.push((*r, lines[0].text.clone(), d.rect_fills[k].clone()));
    }
    let names: Vec<String> = boxes
        .iter()
        .map(|(r, name, _)| {
            let rank = boxes
                .iter()
                .filter(|b| b.1 == *name && stack(b.0.x) == stack(r.x) && b.0.y >= r.y)
                .count();
            match name.as_str() {
                "add & LayerNorm" => format!("{name} {rank} {}", stack(r.x)),
                "position-wise feed-forward" => format!("{name} {}", stack(r.x)),
                _ => name.clone(),
            }
        })
        .collect();
    for (b, name) in boxes.iter_mut().zip(names) {
        b.1 = name;
    }
    let on_box_or_circle = |p: (f64, f64)| -> Option<String> {
        if let Some((r, name, _)) = boxes.iter().find(|b| b.0.on_edge(p, 1.0)) {
            // at the middle of the edge: of the top or bottom, or of a side
            let across = (p.0 - (r.x + r.w / 2.0)).abs() <= 0.5;
            let down = (p.1 - (r.y + r.h / 2.0)).abs() <= 0.5;
            assert!(
                across || down,
                "an arrow meets {name:?} at {p:?}, off the middle of its edge"
            );
            return Some(name.clone());
        }
        let circle = d
            .circles
            .iter()
            .find(|&&(cx, cy, r)| ((p.0 - cx).hypot(p.1 - cy) - r).abs() <= 1.0)?;
        Some(format!(
            "{} {}",
            if circle.2 < 13.0 { "⊕" } else { "~" },
            stack(circle.0)
        ))
    };
    // the tip of each arrow, then where each starts
    let mut tips = Vec::new();
    for (points, _) in &d.arrows {
        let tip = *points.last().unwrap();
        let at_label = d.labels.iter().find(|l| {
            let r = bounds(&l.poly);
            let near = Rect {
                x: r.x - 6.0,
                y: r.y - 6.0,
                w: r.w + 12.0,
                h: r.h + 12.0,
            };
            near.contains(tip, 0.0)
        });
        let name = on_box_or_circle(tip)
            .or(at_label.map(|l| l.text.clone()))
            .unwrap_or_else(|| panic!("an arrow ends at {tip:?}, on nothing"));
        tips.push(name);
    }
    // every arrow is drawn in level and upright strokes, crosses no box and no circle, and
    // reaches its tip from outside what it points at
    let inside = |p: (f64, f64)| {
        boxes.iter().any(|(r, _, _)| {
            p.0 > r.x + 1.0 && p.0 < r.x + r.w - 1.0 && p.1 > r.y + 1.0 && p.1 < r.y + r.h - 1.0
        }) || d
            .circles
            .iter()
            .any(|&(cx, cy, r)| (p.0 - cx).hypot(p.1 - cy) < r - 1.0)
    };
    for (points, _) in &d.arrows {
        for s in points.windows(2) {
            let (a, b) = (s[0], s[1]);
            assert!(
                a.0 == b.0 || a.1 == b.1,
                "an arrow runs slanted from {a:?} to {b:?}"
            );
            let steps = (b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize;
            for t in 0..=steps {
                let f = t as f64 / steps.max(1) as f64;
                let p = (a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1));
                assert!(
                    !inside(p),
                    "the arrow through {points:?} crosses a box or circle at {p:?}"
                );
            }
        }
    }
    let mut edges = Vec::new();
    for (k, (points, colour)) in d.arrows.iter().enumerate() {
        let start = points[0];
        let from = on_box_or_circle(start)
            .or_else(|| {
                let branch = d.arrows.iter().zip(&tips).find(|((line, _), _)| {
                    line.windows(2)
                        .any(|s| to_segment(start, s[0], s[1]) <= 0.5)
                })?;
                Some(format!("into {}", branch.1))
            })
            .unwrap_or_else(|| panic!("an arrow starts at {start:?}, on nothing"));
        // only the residual connections are grey, as the legend says
        assert_eq!(
            from.starts_with("into "),
            colour == "#888888",
            "the arrow from {from} to {} is drawn in {colour}",
            tips[k]
        );
        edges.push(format!("{from} -> {}", tips[k]));
    }
    let mut want = vec![
        "inputs (source tokens) -> input embedding × sqrt(d_model)",
        "outputs, shifted right (target tokens) -> output embedding × sqrt(d_model)",
        "input embedding × sqrt(d_model) -> ⊕ [E]",
        "~ [E] -> ⊕ [E]",
        "output embedding × sqrt(d_model) -> ⊕ [D]",
        "~ [D] -> ⊕ [D]",
        "⊕ [E] -> multi-head self-attention",
        "multi-head self-attention -> add & LayerNorm 1 [E]",
        "add & LayerNorm 1 [E] -> position-wise feed-forward [E]",
        "position-wise feed-forward [E] -> add & LayerNorm 2 [E]",
        "into multi-head self-attention -> add & LayerNorm 1 [E]",
        "into position-wise feed-forward [E] -> add & LayerNorm 2 [E]",
        "⊕ [D] -> masked multi-head self-attention",
        "masked multi-head self-attention -> add & LayerNorm 1 [D]",
        "add & LayerNorm 1 [D] -> multi-head cross-attention",
        "multi-head cross-attention -> add & LayerNorm 2 [D]",
        "add & LayerNorm 2 [D] -> position-wise feed-forward [D]",
        "position-wise feed-forward [D] -> add & LayerNorm 3 [D]",
        "into masked multi-head self-attention -> add & LayerNorm 1 [D]",
        "into multi-head cross-attention -> add & LayerNorm 2 [D]",
        "into position-wise feed-forward [D] -> add & LayerNorm 3 [D]",
        "add & LayerNorm 2 [E] -> multi-head cross-attention",
        "add & LayerNorm 3 [D] -> linear: logits = y E^T",
        "linear: logits = y E^T -> softmax",
        "softmax -> output probabilities (next token)",
    ];
    edges.sort();
    want.sort();
    assert_eq!(edges, want);
    // each legend swatch has its label beside it and the colour of the boxes of its kind
    for (entry, kind) in [
        ("attention (§3.2)", &["attention"][..]),
        ("feed-forward (§3.3)", &["feed-forward"]),
        ("residual + LayerNorm (§3.1)", &["LayerNorm"]),
        ("embeddings (§3.4)", &["embedding"]),
        ("generator (§3.4)", &["linear", "softmax"]),
    ] {
        let l = d.labels.iter().find(|l| l.text == entry).unwrap();
        let b = bounds(&l.poly);
        let k = (0..d.rects.len())
            .find(|&k| {
                let r = d.rects[k];
                r.w == r.h
                    && (b.x - (r.x + r.w) - 8.0).abs() <= 0.5
                    && (l.centre - (r.y + r.h / 2.0)).abs() <= 1.0
            })
            .unwrap_or_else(|| panic!("no swatch just left of {entry:?}"));
        let of_kind: Vec<&(Rect, String, String)> = boxes
            .iter()
            .filter(|b| kind.iter().any(|w| b.1.contains(w)))
            .collect();
        assert!(!of_kind.is_empty(), "no box of the kind {entry:?}");
        for b in of_kind {
            assert_eq!(
                b.2, d.rect_fills[k],
                "{:?} is not coloured as {entry:?}",
                b.1
            );
        }
    }
    // each ⊕ is a level and an upright stroke crossing at its centre, inside it; each ~ is
    // centred in its circle, with "positional" over "encoding" beside it, on the outer side
    for &(cx, cy, r) in &d.circles {
        if r < 13.0 {
            let strokes: Vec<_> = d
                .lines
                .iter()
                .filter(|(a, b)| {
                    ((a.0 + b.0) / 2.0 - cx).abs() <= 0.5 && ((a.1 + b.1) / 2.0 - cy).abs() <= 0.5
                })
                .collect();
            let level = strokes
                .iter()
                .any(|(a, b)| a.1 == b.1 && (b.0 - a.0).abs() > r);
            let upright = strokes
                .iter()
                .any(|(a, b)| a.0 == b.0 && (b.1 - a.1).abs() > r);
            let inside = strokes
                .iter()
                .all(|(a, b)| (a.0 - cx).hypot(a.1 - cy) < r && (b.0 - cx).hypot(b.1 - cy) < r);
            assert!(
                level && upright && inside,
                "the ⊕ at ({cx}, {cy}) is drawn with {strokes:?}"
            );
            continue;
        }
        let tilde = d
            .labels
            .iter()
            .find(|l| l.text == "~" && (l.at.0 - cx).abs() <= 0.5)
            .unwrap();
        assert!(
            (tilde.centre - cy).abs() <= 2.0,
            "the ~ at {:?} is not in the middle of its circle at y = {cy}",
            tilde.at
        );
        let outer = if cx < d.width / 2.0 { -1.0 } else { 1.0 };
        let beside = |text: &str| {
            let l = d.labels.iter().find(|l| {
                l.text == text && (l.at.0 - cx) * outer > 0.0 && (l.at.1 - cy).abs() < 20.0
            });
            let b = bounds(
                &l.unwrap_or_else(|| panic!("no {text:?} beside the ~ at ({cx}, {cy})"))
                    .poly,
            );
            let gap = if outer < 0.0 {
                cx - r - (b.x + b.w)
            } else {
                b.x - (cx + r)
            };
            assert!(
                (2.0..=10.0).contains(&gap),
                "{text:?} at {b:?} is {gap} px from the ~ at ({cx}, {cy})"
            );
            b
        };
        let (upper, lower) = (beside("positional"), beside("encoding"));
        let middle = (upper.y + lower.y + lower.h) / 2.0;
        assert!(
            upper.y + upper.h <= lower.y && (middle - cy).abs() <= 2.0,
            "\"positional\" {upper:?} over \"encoding\" {lower:?} beside the ~ at y = {cy}"
        );
    }
    // the encoder's output is named just right of its arrow, over the turn to the decoder
    let (red, _) = d.arrows.iter().find(|(_, c)| c == "#c0504d").unwrap();
    let l = d.label_box("encoder output (K, V)");
    let turn = red[1];
    assert!(
        (4.0..=12.0).contains(&(l.x - turn.0)) && (0.0..=12.0).contains(&(turn.1 - (l.y + l.h))),
        "the encoder output's label at {l:?} is not just right of and over its arrow's turn at {turn:?}"
    );
    // the output probabilities are named over the softmax, centred on it
    let softmax = boxes.iter().find(|b| b.1 == "softmax").unwrap().0;
    let l = bounds(
        &d.labels
            .iter()
            .find(|l| l.text.starts_with("output probabilities"))
            .unwrap()
            .poly,
    );
    assert!(
        (l.x + l.w / 2.0 - (softmax.x + softmax.w / 2.0)).abs() <= 0.5
            && (0.0..=30.0).contains(&(softmax.y - (l.y + l.h))),
        "the output probabilities at {l:?} are not centred over the softmax {softmax:?}"
    );
    // the legend's note on grey arrows is aligned with its swatches, under the last entry
    let note = bounds(
        &d.labels
            .iter()
            .find(|l| l.text.starts_with("grey arrows"))
            .unwrap()
            .poly,
    );
    let last = d.label_box("generator (§3.4)");
    let swatch_left = d
        .rects
        .iter()
        .filter(|r| r.w == r.h)
        .map(|r| r.x)
        .fold(f64::INFINITY, f64::min);
    assert!(
        (note.x - swatch_left).abs() <= 0.5 && (0.0..=20.0).contains(&(note.y - (last.y + last.h))),
        "the note {note:?} is not under the legend (swatches from x = {swatch_left}, last entry {last:?})"
    );
    // each stack's frame holds its layer's boxes and residual connections, and nothing else
    let frames: Vec<Rect> = (0..d.rects.len())
        .filter(|&k| d.rect_fills[k] == "#f4f4f4")
        .map(|k| d.rects[k])
        .collect();
    assert_eq!(frames.len(), 2, "the encoder's and the decoder's frames");
    for (r, name, _) in &boxes {
        let held = frames.iter().find(|f| f.contains((r.x, r.y), 0.0));
        let in_layer = name.contains("attention")
            || name.contains("LayerNorm")
            || name.contains("feed-forward");
        assert_eq!(
            held.is_some(),
            in_layer,
            "{name:?} at {r:?}, frames {frames:?}"
        );
        if let Some(f) = held {
            let margins = [
                r.x - f.x,
                r.y - f.y,
                f.x + f.w - r.x - r.w,
                f.y + f.h - r.y - r.h,
            ];
            assert!(
                margins.iter().all(|&m| m >= 8.0),
                "{name:?} at {r:?} is not well inside its frame {f:?}"
            );
        }
    }
    for (points, colour) in &d.arrows {
        if colour == "#888888" {
            let frame = frames
                .iter()
                .find(|f| f.contains(points[0], 0.0))
                .expect("a residual in a frame");
            assert!(
                points.iter().all(|&p| frame.contains(p, 0.0)),
                "the residual {points:?} leaves its frame {frame:?}"
            );
        }
    }
    // the title over the middle, and each stack's name beside its frame, centred on it
    let title = d
        .labels
        .iter()
        .find(|l| l.text.starts_with("The Transformer"))
        .unwrap();
    let t = bounds(&title.poly);
    assert!(
        (t.x + t.w / 2.0 - d.width / 2.0).abs() <= 0.5,
        "the title at {t:?}"
    );
    for (name, fill_left) in [
        ("encoder: N × this layer (N = 6)", true),
        ("decoder: N × this layer (N = 6)", false),
    ] {
        let l = d.label_box(name);
        let frame = (0..d.rects.len())
            .filter(|&k| d.rect_fills[k] == "#f4f4f4")
            .map(|k| d.rects[k])
            .find(|f| {
                if fill_left {
                    f.x < d.width / 2.0
                } else {
                    f.x > d.width / 2.0
                }
            })
            .unwrap();
        let gap = if fill_left {
            frame.x - (l.x + l.w)
        } else {
            l.x - (frame.x + frame.w)
        };
        assert!(
            (0.0..=12.0).contains(&gap)
                && (l.y + l.h / 2.0 - (frame.y + frame.h / 2.0)).abs() <= 1.0,
            "{name:?} at {l:?} is not centred beside its frame {frame:?}"
        );
    }
}

#[test]
fn heatmap_cells_never_cover_each_other() {
    let mut checked = 0;
    for (name, d) in drawings() {
        let mut cells = d.cells.clone();
        cells.sort_by(|a, b| a.y.total_cmp(&b.y).then(a.x.total_cmp(&b.x)));
        for (i, a) in cells.iter().enumerate() {
            assert!(a.w > 0.0 && a.h > 0.0, "{name}: an empty cell {a:?}");
            for b in cells[i + 1..].iter().take_while(|b| b.y < a.y + a.h) {
                checked += 1;
                let w = (a.x + a.w).min(b.x + b.w) - a.x.max(b.x);
                let h = (a.y + a.h).min(b.y + b.h) - a.y.max(b.y);
                // up to 0.5 px: a colour bar's strips overlap by 0.3 px so that no seam shows
                assert!(
                    w <= 0.5 || h <= 0.5,
                    "{name}: cells {a:?} and {b:?} overlap"
                );
            }
        }
    }
    assert!(checked > 1000, "only {checked} pairs of cells compared");
}

// ---------------------------------------------------------------------------------------------
// Reading a heatmap back, as a reader does: a cell's colour looked up on the figure's own
// legend, its row and column from the figure's own tick labels.

/// `#rrggbb` as three channels.
fn rgb(hex: &str) -> [f64; 3] {
    let h = hex
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("colour {hex:?}"));
    let h = if h.len() == 3 {
        h.chars().flat_map(|c| [c, c]).collect()
    } else {
        h.to_string()
    };
    let c = |k: usize| f64::from(u8::from_str_radix(&h[2 * k..2 * k + 2], 16).unwrap());
    [c(0), c(1), c(2)]
}

/// A legend: colours in order along the scale, each with the value it stands for.
struct Legend(Vec<(f64, [f64; 3])>);

impl Legend {
    /// The value of `colour`: its nearest point on the path through the legend's colours,
    /// with the value interpolated along that segment, and how far the colour is from it.
    fn read(&self, colour: &str) -> (f64, f64) {
        let c = rgb(colour);
        let mut best = (f64::INFINITY, f64::NAN);
        for pair in self.0.windows(2) {
            let ((v0, a), (v1, b)) = (pair[0], pair[1]);
            let ab: Vec<f64> = (0..3).map(|k| b[k] - a[k]).collect();
            let len2: f64 = ab.iter().map(|x| x * x).sum();
            let t = if len2 == 0.0 {
                0.0
            } else {
                ((0..3).map(|k| (c[k] - a[k]) * ab[k]).sum::<f64>() / len2).clamp(0.0, 1.0)
            };
            let dist = (0..3)
                .map(|k| (a[k] + t * ab[k] - c[k]).powi(2))
                .sum::<f64>()
                .sqrt();
            if dist < best.0 {
                best = (dist, v0 + t * (v1 - v0));
            }
        }
        (best.1, best.0)
    }
}

/// The labels that are numbers, with their values (`5k` is 5000).
fn numbers(d: &Drawing) -> Vec<(&Label, f64)> {
    d.labels
        .iter()
        .filter_map(|l| {
            let text = l.text.replace('−', "-");
            let value = match text.strip_suffix('k') {
                Some(thousands) => thousands.parse::<f64>().ok().map(|v| v * 1e3),
                None => text.parse().ok(),
            };
            value.map(|v| (l, v))
        })
        .collect()
}

/// The vertical middle of an unrotated label.
fn middle(l: &Label) -> f64 {
    (l.poly[0].1 + l.poly[2].1) / 2.0
}

fn figure(name: &str) -> Drawing {
    let f = figures::ALL.iter().find(|f| f.name == name).unwrap();
    read(&(f.draw)().unwrap())
}

/// Asserts that a figure names its axes where a reader looks: `across` below y = `under`,
/// centred on x = `centre` (within half a pixel); `down` ending left of x = `left`, centred
/// on y = `middle` within `slack`.
fn assert_axis_names(
    d: &Drawing,
    (across, centre, under): (&str, f64, f64),
    (down, middle, left, slack): (&str, f64, f64, f64),
) {
    let a = d.label_box(across);
    assert!(
        (a.x + a.w / 2.0 - centre).abs() <= 0.5 && a.y > under,
        "{across:?} at {a:?} is not centred under the plot (x = {centre}, below y = {under})"
    );
    let b = d.label_box(down);
    assert!(
        (b.y + b.h / 2.0 - middle).abs() <= slack && b.x + b.w < left,
        "{down:?} at {b:?} is not centred left of the plot (y = {middle}, left of x = {left})"
    );
}

#[test]
fn the_positional_heatmap_reads_back_as_the_encodings_on_its_own_legend_and_ticks() {
    let d = figure("pe-heatmap");
    // the colour bar: the column of strips right of the grid
    let right = d
        .cells
        .iter()
        .map(|c| c.x)
        .fold(f64::NEG_INFINITY, f64::max);
    let (bar, grid): (Vec<usize>, Vec<usize>) =
        (0..d.cells.len()).partition(|&k| d.cells[k].x == right);
    assert!(bar.len() >= 32, "{} strips in the colour bar", bar.len());
    // the strips fill the bar's outline from top to bottom, each overlapping the one above by
    // less than half a pixel so that no seam shows
    let outline = *d
        .rects
        .iter()
        .find(|r| r.x == right)
        .expect("the colour bar's outline");
    let mut strips: Vec<Rect> = bar.iter().map(|&k| d.cells[k]).collect();
    strips.sort_by(|a, b| a.y.total_cmp(&b.y));
    let mut reach = outline.y;
    for s in &strips {
        assert!(
            s.w == outline.w && (0.0..0.5).contains(&(reach - s.y)),
            "a strip at {s:?} after the bar's colours reached y = {reach}"
        );
        reach = s.y + s.h;
    }
    let end = outline.y + outline.h;
    assert!(
        (0.0..0.5).contains(&(reach - end)),
        "the strips end at {reach}, the bar at {end}"
    );
    let bar_x = d.cells[bar[0]].x + d.cells[bar[0]].w;
    // its tick labels, right of it: value at height
    let ticks: Vec<(f64, f64)> = numbers(&d)
        .into_iter()
        .filter(|(l, _)| l.at.0 > bar_x)
        .map(|(l, v)| (middle(l), v))
        .collect();
    let (top, bottom) = (
        ticks
            .iter()
            .copied()
            .fold((f64::INFINITY, 0.0), |a, t| if t.0 < a.0 { t } else { a }),
        ticks.iter().copied().fold(
            (f64::NEG_INFINITY, 0.0),
            |a, t| if t.0 > a.0 { t } else { a },
        ),
    );
    assert_eq!((top.1, bottom.1), (1.0, -1.0), "the bar's end labels");
    let value_at = |y: f64| top.1 + (y - top.0) / (bottom.0 - top.0) * (bottom.1 - top.1);
    let mut strips: Vec<(f64, [f64; 3])> = bar
        .iter()
        .map(|&k| {
            let c = d.cells[k];
            (value_at(c.y + c.h / 2.0), rgb(&d.cell_fills[k]))
        })
        .collect();
    strips.sort_by(|a, b| a.0.total_cmp(&b.0));
    let legend = Legend(strips);

    // rows and columns: the grid's distinct positions, named by the tick labels under and left
    // of the grid (the label of column j sits at its middle)
    let mut xs: Vec<f64> = grid.iter().map(|&k| d.cells[k].x).collect();
    let mut ys: Vec<f64> = grid.iter().map(|&k| d.cells[k].y).collect();
    for v in [&mut xs, &mut ys] {
        v.sort_by(f64::total_cmp);
        v.dedup();
    }
    let (cols, rows) = (xs.len(), ys.len());
    let cell = d.cells[grid[0]].w;
    let (grid_left, grid_bottom) = (xs[0], ys[rows - 1] + cell);
    let (mut col_ticks, mut row_ticks) = (0, 0);
    for (l, v) in numbers(&d) {
        if l.at.0 > xs[cols - 1] + cell {
            continue; // the colour bar's own labels
        } else if l.at.1 > grid_bottom {
            let j = ((l.at.0 - grid_left) / cell - 0.5).round();
            assert_eq!(j, v, "column tick {v} stands under column {j}");
            col_ticks += 1;
        } else if l.at.0 < grid_left {
            let i = ((middle(l) - ys[0]) / cell - 0.5).round();
            assert_eq!(i, v, "row tick {v} stands beside row {i}");
            row_ticks += 1;
        }
    }
    assert!(
        col_ticks >= 4 && row_ticks >= 4,
        "{col_ticks} column and {row_ticks} row ticks"
    );
    // the axes' names: "dimension j" centred under the grid, "position pos" beside it
    assert_axis_names(
        &d,
        (
            "dimension j",
            (xs[0] + xs[cols - 1] + cell) / 2.0,
            grid_bottom,
        ),
        ("position pos", (ys[0] + grid_bottom) / 2.0, grid_left, 0.5),
    );

    let pe: DMatrix<f64> = sinusoidal(rows, cols);
    let mut worst = 0.0f64;
    for &k in &grid {
        let c = d.cells[k];
        let j = xs.iter().position(|&x| x == c.x).unwrap();
        let pos = ys.iter().position(|&y| y == c.y).unwrap();
        let (v, off) = legend.read(&d.cell_fills[k]);
        // a cell of value ±1 lies half a strip beyond the bar's end strips (about 5 steps of a
        // channel)
        assert!(
            off < 8.0,
            "cell ({pos}, {j}): colour {} is not on the legend",
            d.cell_fills[k]
        );
        worst = worst.max((v - pe[(pos, j)]).abs());
    }
    // the cells are coloured at steps of 1/32 and the bar has strips 2/64 tall: a reading is
    // within 1/64 + 1/64 of the value
    assert!(
        worst <= 0.04,
        "a cell reads {worst:.3} away from PE(pos, j)"
    );
}

#[test]
fn the_untrained_attention_heatmap_prints_its_stated_experiment_and_each_row_sums_to_one() {
    let d = figure("attention-heatmap");
    let nums = numbers(&d);
    let mut rows_checked = 0;
    // (printed weight, lightness of its cell)
    let mut shades: Vec<(f64, f64)> = Vec::new();
    // every cell holds its weight printed: group by the cell's row (its top edge) and panel
    // (left or right half of the figure: the heads sit two by two)
    let mut rows: std::collections::BTreeMap<(i64, bool), Vec<f64>> = Default::default();
    for (k, r) in d.rects.iter().enumerate().filter(|(_, r)| r.w < 100.0) {
        let printed = nums.iter().find(|(l, _)| r.contains(l.at, 0.0));
        if let Some((_, v)) = printed {
            let right_half = r.x > d.width / 2.0;
            rows.entry((r.y.round() as i64, right_half))
                .or_default()
                .push(*v);
            let c = rgb(&d.rect_fills[k]);
            shades.push((*v, c.iter().sum::<f64>()));
        }
    }
    for ((y, _), weights) in &rows {
        assert_eq!(
            weights.len(),
            6,
            "the row at y = {y} has {} cells",
            weights.len()
        );
        let sum: f64 = weights.iter().sum();
        // each weight is printed to two decimals
        assert!(
            (sum - 1.0).abs() <= 0.005 * 6.0,
            "the row at y = {y} sums to {sum}"
        );
        rows_checked += 1;
    }
    assert_eq!(rows_checked, 4 * 6, "four heads of six rows");
    // the heads two by two, each naming its rows and columns by the tokens
    let squares = d.rects.iter().filter(|r| r.w == r.h && r.w < 100.0);
    let (mut lefts, mut tops): (Vec<f64>, Vec<f64>) = squares.map(|r| (r.x, r.y)).unzip();
    for v in [&mut lefts, &mut tops] {
        v.sort_by(f64::total_cmp);
        v.dedup();
    }
    assert_eq!((lefts.len(), tops.len()), (12, 12));
    let side = d.rects.iter().find(|r| r.w == r.h).unwrap().w;
    let tokens = ["the", "cat", "sat", "on", "the", "mat"];
    // the experiment the figure states, run through the library: the sentence's five words
    // embedded (ids by first appearance) plus the positional encodings, through an untrained
    // multi-head self-attention with d_model = 32 and h = 4, the weights drawn from seed 7
    let mut rng = StdRng::seed_from_u64(7);
    let embedding = Embedding::<f64>::new(5, 32, &mut rng);
    let x = embedding.embed(&[0, 1, 2, 3, 0, 4]) + sinusoidal::<f64>(6, 32);
    let heads = MultiHeadAttention::<f64>::new(32, 4, 8, 8, false, &mut rng)
        .forward(&x, &x, &x, None)
        .weights;
    for (head, (a, b)) in [(0, 0), (6, 0), (0, 6), (6, 6)].into_iter().enumerate() {
        let grid = (&lefts[a..a + 6], &tops[b..b + 6], side);
        assert_named_grid(&d, grid, &tokens, &tokens);
        for (i, j) in (0..6).flat_map(|i| (0..6).map(move |j| (i, j))) {
            let (x, y) = (lefts[a + j], tops[b + i]);
            let cell = d.rects.iter().find(|r| r.x == x && r.y == y).unwrap();
            let printed = nums
                .iter()
                .find(|(l, _)| cell.contains(l.at, 0.0))
                .unwrap()
                .1;
            let want = heads[head][(i, j)];
            assert!(
                (printed - want).abs() <= 0.005 + 1e-9,
                "head {}, query {i}, key {j} reads {printed}, the library gives {want:.4}",
                head + 1
            );
        }
        // with its title centred above the names of its columns
        let title = format!("head {}", head + 1);
        let t = d.label_box(&title);
        let centre = lefts[a] + 3.0 * side;
        assert!(
            (t.x + t.w / 2.0 - centre).abs() <= 0.5
                && (tops[b] - 40.0..tops[b] - 12.0).contains(&(t.y + t.h)),
            "{title:?} at {t:?} is not centred above its panel (x = {centre}, top {})",
            tops[b]
        );
    }
    // a larger weight is never drawn lighter
    shades.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in shades.windows(2) {
        assert!(
            pair[1].0 == pair[0].0 || pair[1].1 <= pair[0].1,
            "weight {} is drawn lighter than weight {}",
            pair[1].0,
            pair[0].0
        );
    }
}

#[test]
fn each_row_of_the_trained_attention_maps_reads_as_a_distribution_on_the_legend() {
    for (name, causal) in [
        ("attention-encoder", false),
        ("attention-decoder", true),
        ("attention-cross", false),
    ] {
        let d = figure(name);
        // the legend: the 11 swatches in a row labelled 0 .. 1 below them
        let swatches: Vec<usize> = (0..d.rects.len())
            .filter(|&k| !d.boxed[k] && d.rects[k].w == d.rects[k].h)
            .collect();
        assert_eq!(
            swatches.len(),
            11,
            "{name}: {} legend swatches",
            swatches.len()
        );
        let nums = numbers(&d);
        let tick = |v: f64| {
            nums.iter()
                .find(|(_, x)| *x == v)
                .map(|(l, _)| l.at.0)
                .unwrap_or_else(|| panic!("{name}: no legend label {v}"))
        };
        let (x0, x1) = (tick(0.0), tick(1.0));
        let (first, last) = (d.rects[swatches[0]], d.rects[swatches[10]]);
        assert!(
            (x0 - first.x).abs() < 1.0 && (x1 - (last.x + last.w)).abs() < 1.0,
            "{name}: the legend's 0 and 1 label its ends"
        );
        // the swatches touch in one row; 0, 0.5 and 1 are centred under its ends and middle,
        // just below it, and "weight" names it from the left, level with it
        for pair in swatches.windows(2) {
            let (a, b) = (d.rects[pair[0]], d.rects[pair[1]]);
            assert!(
                a.y == b.y && (b.x - a.x - a.w).abs() <= 0.5,
                "{name}: legend swatches {a:?} and {b:?}"
            );
        }
        // in its outline
        let framed = (0..d.rects.len()).any(|k| {
            let r = d.rects[k];
            d.boxed[k]
                && (r.x - first.x).abs() <= 0.5
                && (r.x + r.w - last.x - last.w).abs() <= 0.5
                && (r.y - first.y).abs() <= 0.5
                && (r.h - first.h).abs() <= 0.5
        });
        assert!(framed, "{name}: no outline around the legend's swatches");
        for (v, x) in [
            (0.0, first.x),
            (0.5, (first.x + last.x + last.w) / 2.0),
            (1.0, last.x + last.w),
        ] {
            let l = nums.iter().find(|(_, u)| *u == v).unwrap().0;
            let b = bounds(&l.poly);
            assert!(
                (b.x + b.w / 2.0 - x).abs() <= 0.5
                    && (0.0..=16.0).contains(&(b.y - first.y - first.h)),
                "{name}: the legend's {v} at {b:?} is not just under x = {x}"
            );
        }
        let w = d.label_box("weight");
        assert!(
            (0.0..=12.0).contains(&(first.x - w.x - w.w))
                && (w.y + w.h / 2.0 - (first.y + first.h / 2.0)).abs() <= 2.0,
            "{name}: \"weight\" at {w:?} does not name the legend from its left"
        );
        // each swatch stands for the value at its middle, read on the labels' scale
        let legend = Legend(
            swatches
                .iter()
                .map(|&k| {
                    let r = d.rects[k];
                    let middle = r.x + r.w / 2.0;
                    let t = (middle - x0) / (x1 - x0);
                    // the labels span the ends of the swatches, the values their middles
                    let v = (t * 11.0 - 0.5) / 10.0;
                    (v, rgb(&d.rect_fills[k]))
                })
                .collect(),
        );
        // the panels, one per layer and head: each titled above it, centred, layers down and
        // heads across; the picture ends 20 px right of the last head
        let panels: Vec<Rect> = (0..d.rects.len())
            .filter(|&k| {
                d.boxed[k]
                    && d.cells
                        .iter()
                        .any(|c| d.rects[k].contains((c.x + 1.0, c.y + 1.0), 0.0))
            })
            .map(|k| d.rects[k])
            .collect();
        let mut xs: Vec<f64> = panels.iter().map(|p| p.x).collect();
        let mut ys: Vec<f64> = panels.iter().map(|p| p.y).collect();
        for v in [&mut xs, &mut ys] {
            v.sort_by(f64::total_cmp);
            v.dedup();
        }
        assert_eq!(
            xs.len() * ys.len(),
            panels.len(),
            "{name}: the panels form a grid"
        );
        for p in &panels {
            let (layer, head) = (
                ys.iter().position(|&y| y == p.y).unwrap() + 1,
                xs.iter().position(|&x| x == p.x).unwrap() + 1,
            );
            let title = format!("layer {layer}, head {head}");
            let t = bounds(
                &d.labels
                    .iter()
                    .find(|l| l.text == title)
                    .unwrap_or_else(|| panic!("{name}: no {title:?}"))
                    .poly,
            );
            assert!(
                (t.x + t.w / 2.0 - (p.x + p.w / 2.0)).abs() <= 0.5 && t.y + t.h < p.y,
                "{name}: {title:?} at {t:?} is not centred above its panel {p:?}"
            );
        }
        // each column of each panel named above it: the slanted name starts over its middle
        for p in &panels {
            let mut lefts: Vec<f64> = d
                .cells
                .iter()
                .filter(|c| p.contains((c.x + 1.0, c.y + 1.0), 0.0))
                .map(|c| c.x)
                .collect();
            lefts.sort_by(f64::total_cmp);
            lefts.dedup();
            let side = p.w / lefts.len() as f64;
            for left in lefts {
                let named = d.labels.iter().filter(|l| l.rotated).any(|l| {
                    let start = (
                        (l.poly[0].0 + l.poly[3].0) / 2.0,
                        (l.poly[0].1 + l.poly[3].1) / 2.0,
                    );
                    (start.0 - (left + side / 2.0)).abs() <= 3.0
                        && (0.0..=12.0).contains(&(p.y - start.1))
                });
                assert!(
                    named,
                    "{name}: the column at x = {left} of the panel {p:?} has no name over it"
                );
            }
        }
        // each row of each layer named at its left, centred on it
        for p in panels.iter().filter(|p| p.x == xs[0]) {
            let mut tops: Vec<f64> = d
                .cells
                .iter()
                .filter(|c| p.contains((c.x + 1.0, c.y + 1.0), 0.0))
                .map(|c| c.y)
                .collect();
            tops.sort_by(f64::total_cmp);
            tops.dedup();
            let side = p.h / tops.len() as f64;
            for top in tops {
                let named = d.labels.iter().filter(|l| !l.rotated).any(|l| {
                    let b = bounds(&l.poly);
                    (p.x - 12.0..=p.x).contains(&(b.x + b.w))
                        && (l.centre - (top + side / 2.0)).abs() <= 1.0
                });
                assert!(
                    named,
                    "{name}: the row at y = {top} of the panel {p:?} has no name left of it"
                );
            }
        }
        let right = panels.iter().map(|p| p.x + p.w).fold(0.0, f64::max);
        assert!(
            (d.width - right - 20.0).abs() <= 0.5,
            "{name}: the last head ends at {right} of {}",
            d.width
        );
        // the cells, grouped by row of a panel
        let mut rows: std::collections::BTreeMap<(i64, i64), Vec<(f64, f64)>> = Default::default();
        for (c, fill) in d.cells.iter().zip(&d.cell_fills) {
            let (v, off) = legend.read(fill);
            // the swatches are 0.1 apart; between two of them the scale may bend (it is
            // straight between five colours), so a colour can lie up to ~10 steps of a channel
            // off the straight line between them
            assert!(off < 15.0, "{name}: colour {fill} is not on the legend");
            let panel_of = d
                .rects
                .iter()
                .zip(&d.boxed)
                .position(|(r, &b)| b && r.contains((c.x + 1.0, c.y + 1.0), 0.0))
                .unwrap_or_else(|| panic!("{name}: a cell at {c:?} outside every panel"));
            rows.entry((panel_of as i64, c.y.round() as i64))
                .or_default()
                .push((c.x, v));
        }
        assert!(rows.len() >= 8, "{name}: {} rows", rows.len());
        for ((panel, y), cells) in &mut rows {
            cells.sort_by(|a, b| a.0.total_cmp(&b.0));
            let sum: f64 = cells.iter().map(|c| c.1).sum();
            assert!(
                (sum - 1.0).abs() <= 0.05,
                "{name}: the row at y = {y} of panel {panel} reads as weights summing to {sum:.3}"
            );
            if causal {
                // row i of the masked self-attention may not look past position i
                let panel_rect = d.rects[*panel as usize];
                let cell = cells[1].0 - cells[0].0;
                let i = ((*y as f64 - panel_rect.y) / cell).round() as usize;
                for (j, &(_, v)) in cells.iter().enumerate().skip(i + 1) {
                    assert!(
                        v.abs() <= 0.01,
                        "{name}: row {i} reads {v:.3} at later position {j}"
                    );
                }
            }
        }
    }
}

/// The relative luminance of a colour (WCAG 2).
fn luminance(hex: &str) -> f64 {
    let lin = |c: f64| {
        let c = c / 255.0;
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let [r, g, b] = rgb(hex);
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

#[test]
fn a_label_on_a_coloured_cell_stands_out_from_it() {
    // WCAG's contrast ratio; 3:1 is its minimum for large or bold text, and the numbers in the
    // cells are 11.5 to 13 px, so 3:1 is the least that can be read
    let mut checked = 0;
    let mut problems = Vec::new();
    for (name, d) in drawings() {
        let fills = d
            .rects
            .iter()
            .zip(&d.rect_fills)
            .chain(d.cells.iter().zip(&d.cell_fills));
        let hosts: Vec<(&Rect, &String)> = fills.filter(|(_, f)| f.starts_with('#')).collect();
        for l in d
            .labels
            .iter()
            .filter(|l| !l.rotated && l.fill.starts_with('#'))
        {
            let host = hosts
                .iter()
                .filter(|(r, _)| r.contains(l.at, 0.0))
                .min_by(|a, b| (a.0.w * a.0.h).total_cmp(&(b.0.w * b.0.h)));
            if let Some((_, fill)) = host {
                checked += 1;
                let (a, b) = (luminance(&l.fill), luminance(fill));
                let ratio = (a.max(b) + 0.05) / (a.min(b) + 0.05);
                if ratio < 3.0 {
                    problems.push(format!(
                        "{name}: {:?} in {} on {fill}: contrast {ratio:.2}",
                        l.text, l.fill
                    ));
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} labels on cells");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Asserts that a grid's names sit where a reader looks for them: each column's name centred
/// over its column, its lower edge at most 12 px above the grid; each row's name ending at most
/// 12 px left of the grid, centred on its row. The columns start at `lefts`, the rows at `tops`,
/// every cell `side` wide.
fn assert_named_grid(
    d: &Drawing,
    (lefts, tops, side): (&[f64], &[f64], f64),
    rows: &[&str],
    cols: &[&str],
) {
    for (j, name) in cols.iter().enumerate() {
        let centre = lefts[j] + side / 2.0;
        let found = d.labels.iter().any(|l| {
            let b = bounds(&l.poly);
            l.text == *name
                && (b.x + b.w / 2.0 - centre).abs() <= 0.5
                && (tops[0] - 12.0..=tops[0]).contains(&(b.y + b.h))
        });
        assert!(
            found,
            "no {name:?} centred over column {j} at x = {centre}, just above y = {}",
            tops[0]
        );
    }
    for (i, name) in rows.iter().enumerate() {
        let middle = tops[i] + side / 2.0;
        let found = d.labels.iter().any(|l| {
            let b = bounds(&l.poly);
            l.text == *name
                && (lefts[0] - 12.0..=lefts[0]).contains(&(b.x + b.w))
                && (l.centre - middle).abs() <= 1.0
        });
        assert!(
            found,
            "no {name:?} left of row {i}, centred on y = {middle}"
        );
    }
}

#[test]
fn the_causal_mask_figure_is_consistent_from_scores_to_weights() {
    let d = figure("causal-mask");
    // the three panels of 5 x 5 cells, each cell with its printed value
    let mut cells: Vec<(Rect, &str)> = Vec::new();
    for r in d.rects.iter().filter(|r| r.w == r.h && r.w < 100.0) {
        let label = d
            .labels
            .iter()
            .find(|l| r.contains(l.at, 0.0))
            .unwrap_or_else(|| panic!("a cell at {r:?} without its value"));
        cells.push((*r, label.text.as_str()));
    }
    assert_eq!(cells.len(), 75, "three panels of 5 x 5 cells");
    let mut lefts: Vec<f64> = cells.iter().map(|c| c.0.x).collect();
    let mut tops: Vec<f64> = cells.iter().map(|c| c.0.y).collect();
    for v in [&mut lefts, &mut tops] {
        v.sort_by(f64::total_cmp);
        v.dedup();
    }
    assert_eq!((lefts.len(), tops.len()), (15, 5));
    // each panel's numbered heading and its "keys j" are centred above its five columns
    let side = cells[0].0.w;
    for (p, heading) in ["1. ", "2. ", "3. "].into_iter().enumerate() {
        let centre = (lefts[5 * p] + lefts[5 * p + 4] + side) / 2.0;
        let keys = d.labels.iter().filter(|l| l.text == "keys j");
        let above: Vec<&Label> = d
            .labels
            .iter()
            .filter(|l| l.text.starts_with(heading))
            .chain(keys.filter(|l| (l.at.0 - centre).abs() < side))
            .collect();
        assert_eq!(above.len(), 2, "panel {p}'s heading and keys label");
        for l in above {
            let b = bounds(&l.poly);
            assert!(
                l.at.1 < tops[0] && (b.x + b.w / 2.0 - centre).abs() <= 0.5,
                "{:?} is not centred above panel {p} (centre x {centre})",
                l.text
            );
        }
    }
    // each panel names its rows and columns by the tokens
    let tokens = ["<s>", "the", "cat", "sat", "down"];
    for p in 0..3 {
        let grid = (&lefts[5 * p..5 * p + 5], &tops[..], side);
        assert_named_grid(&d, grid, &tokens, &tokens);
    }
    // and "queries i" is centred beside the rows, left of them
    let b = d.label_box("queries i");
    let middle = (tops[0] + tops[4] + side) / 2.0;
    assert!(
        b.x + b.w < lefts[0] && (b.y + b.h / 2.0 - middle).abs() <= 0.5,
        "\"queries i\" at {b:?} is not centred left of the rows (middle y {middle})"
    );
    let at = |panel: usize, i: usize, j: usize| -> &str {
        let (x, y) = (lefts[5 * panel + j], tops[i]);
        cells.iter().find(|c| c.0.x == x && c.0.y == y).unwrap().1
    };
    let number = |s: &str| -> f64 {
        s.parse()
            .unwrap_or_else(|_| panic!("{s:?} is not a number"))
    };
    for i in 0..5 {
        let mut row = Vec::new(); // the masked scores of row i
        for j in 0..5 {
            // 1: q = k = x, so the scores are symmetric
            assert_eq!(at(0, i, j), at(0, j, i), "scores ({i}, {j}) and ({j}, {i})");
            // 2: the mask hides exactly the later keys and keeps the rest as they were
            if j > i {
                assert_eq!(at(1, i, j), "-inf", "masked score ({i}, {j})");
                assert_eq!(number(at(2, i, j)), 0.0, "weight ({i}, {j}) on a later key");
            } else {
                assert_eq!(at(1, i, j), at(0, i, j), "kept score ({i}, {j})");
                row.push(number(at(1, i, j)));
            }
        }
        // 3: the weights are the softmax of the printed row, up to its one-decimal rounding
        // (a score off by 0.05 moves a weight by at most about 5 %)
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let total: f64 = row.iter().map(|s| (s - max).exp()).sum();
        let mut sum = 0.0;
        for (j, s) in row.iter().enumerate() {
            let w = number(at(2, i, j));
            let want = (s - max).exp() / total;
            assert!(
                (w - want).abs() <= 0.05 * want + 0.006,
                "weight ({i}, {j}) reads {w}, the softmax of its row gives {want:.3}"
            );
            sum += w;
        }
        assert!(
            (sum - 1.0).abs() <= 0.005 * (i + 1) as f64,
            "row {i} sums to {sum}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a plot back, as a reader does: each axis from its own tick labels alone, each series
// by its legend entry (the entry's swatch has the series' kind and colour), and every drawn
// point compared with the data the figure claims to show, taken from the library or from the
// committed run it plots, never from the figure's code.

/// How far, in pixels, a tick label may sit from the straight line (or logarithmic curve)
/// fitted through all the ticks of its axis. plotters puts every tick on a whole pixel, which
/// moves it by less than a pixel, and the least-squares line runs through the middle of those
/// moves; a tick labelled with a wrong value sits a whole tick spacing off.
const TICK_FIT: f64 = 0.75;

/// How far, in pixels along each axis, a drawn point may sit from where its data belongs.
/// plotters rounds every coordinate to a whole pixel, a tick's the same way as a point's, so
/// both sit within the same pixel-wide band around the exact position, and the line fitted
/// through the ticks stays inside that band: a point lies less than a pixel from it. Comparing
/// in pixels is comparing in data units with a pixel's worth of data as the tolerance; each
/// test says what that is.
const PX: f64 = 1.0;

/// One axis, read from its tick labels: the value v is drawn at pixel `at + per * t(v)`, where
/// t(v) is v on a linear axis and ln v on a logarithmic one.
#[derive(Clone, Debug)]
struct Axis {
    log: bool,
    at: f64,
    per: f64,
    /// The smallest and largest tick value.
    lo: f64,
    hi: f64,
    /// Every tick's value, in increasing order.
    ticks: Vec<f64>,
}

impl Axis {
    /// The axis through `ticks` (pixel, value): a linear one if the ticks lie on a line, else a
    /// logarithmic one if they lie on that, each to within `TICK_FIT`.
    ///
    /// # Panics
    /// If fewer than three ticks are given or they fit neither scale: a tick is mislabelled.
    fn from_ticks(ticks: &[(f64, f64)], what: &str) -> Axis {
        assert!(ticks.len() >= 3, "{what}: only {} ticks", ticks.len());
        let (lo, hi) = ticks
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
                (a.min(t.1), b.max(t.1))
            });
        let fit = |log: bool| {
            let t = |v: f64| if log { v.ln() } else { v };
            let n = ticks.len() as f64;
            let (mt, mp) = ticks
                .iter()
                .fold((0.0, 0.0), |(a, b), &(p, v)| (a + t(v) / n, b + p / n));
            let (sxy, sxx) = ticks.iter().fold((0.0, 0.0), |(a, b), &(p, v)| {
                (a + (t(v) - mt) * (p - mp), b + (t(v) - mt).powi(2))
            });
            let per = sxy / sxx;
            let mut values: Vec<f64> = ticks.iter().map(|t| t.1).collect();
            values.sort_by(f64::total_cmp);
            let axis = Axis {
                log,
                at: mp - per * mt,
                per,
                lo,
                hi,
                ticks: values,
            };
            let worst = ticks
                .iter()
                .map(|&(p, v)| (axis.pixel(v) - p).abs())
                .fold(0.0, f64::max);
            (axis, worst)
        };
        let (linear, off) = fit(false);
        if off <= TICK_FIT {
            return linear;
        }
        if lo > 0.0 {
            let (log, off_log) = fit(true);
            if off_log <= TICK_FIT {
                return log;
            }
        }
        panic!("{what}: the ticks {ticks:?} are on no linear or logarithmic scale ({off:.2} px off a line)")
    }

    fn pixel(&self, v: f64) -> f64 {
        self.at + self.per * if self.log { v.ln() } else { v }
    }

    fn value(&self, p: f64) -> f64 {
        let t = (p - self.at) / self.per;
        if self.log {
            t.exp()
        } else {
            t
        }
    }

    /// Data units per pixel at v (on a logarithmic axis, a fraction of v).
    fn resolution(&self, v: f64) -> f64 {
        (self.value(self.pixel(v) + 1.0) - v).abs()
    }
}

/// One plotted panel: its axes, and the band of heights it spans (its x tick labels are its
/// lower edge).
struct Chart {
    x: Axis,
    y: Axis,
    band: (f64, f64),
}

impl Chart {
    /// None if the drawn point `p` is within `PX` of where `want` belongs along both axes, else
    /// what it reads instead.
    fn miss(&self, p: (f64, f64), want: (f64, f64)) -> Option<String> {
        let dx = (self.x.pixel(want.0) - p.0).abs();
        let dy = (self.y.pixel(want.1) - p.1).abs();
        (dx > PX || dy > PX).then(|| {
            format!(
                "the point at {p:?} reads ({:.5}, {:.5}), the data is ({:.5}, {:.5})",
                self.x.value(p.0),
                self.y.value(p.1),
                want.0,
                want.1
            )
        })
    }
}

/// The panels of a plotters figure, top to bottom. The tick labels under a panel share the
/// height of their anchor, those beside it the x of theirs (a column may run past several
/// panels: each panel takes the labels between its own row and the row above).
fn charts(d: &Drawing) -> Vec<Chart> {
    let nums: Vec<(&Label, f64)> = numbers(d).into_iter().filter(|(l, _)| !l.rotated).collect();
    let shared = |key: fn(&Label) -> f64| -> Vec<f64> {
        let mut keys: Vec<f64> = nums.iter().map(|(l, _)| key(l)).collect();
        keys.sort_by(f64::total_cmp);
        keys.dedup();
        keys.retain(|&k| nums.iter().filter(|(l, _)| key(l) == k).count() >= 3);
        keys
    };
    let (rows, columns) = (shared(|l| l.at.1), shared(|l| l.at.0));
    let mut above = 0.0;
    rows.iter()
        .map(|&row| {
            let x: Vec<(f64, f64)> = nums
                .iter()
                .filter(|(l, _)| l.at.1 == row)
                .map(|(l, v)| (l.at.0, *v))
                .collect();
            let y: Vec<(f64, f64)> = nums
                .iter()
                .filter(|(l, _)| columns.contains(&l.at.0) && l.at.1 > above && l.at.1 < row)
                .map(|(l, v)| (l.centre, *v))
                .collect();
            let band = (above, row);
            above = row;
            Chart {
                x: Axis::from_ticks(&x, &format!("the x axis above {row}")),
                y: Axis::from_ticks(&y, &format!("the y axis above {row}")),
                band,
            }
        })
        .collect()
}

/// One legend entry: its text and the kind and colour of the swatch beside it.
#[derive(Debug)]
struct Entry {
    text: String,
    kind: Kind,
    colour: String,
}

impl Drawing {
    /// The legend frames: the outlined rectangles of a plotters figure.
    fn frames(&self) -> impl Iterator<Item = &Rect> {
        self.rects
            .iter()
            .zip(&self.boxed)
            .filter_map(|(r, &b)| b.then_some(r))
    }

    fn in_a_frame(&self, m: &Mark) -> bool {
        self.frames()
            .any(|f| m.points.iter().all(|&p| f.contains(p, 0.0)))
    }

    /// Each label in a legend frame with the one mark in the frame level with it and left of
    /// it.
    fn legend(&self) -> Vec<Entry> {
        let mut entries = Vec::new();
        for frame in self.frames() {
            let mut swatch_column = None;
            for l in self.labels.iter().filter(|l| frame.contains(l.at, 0.0)) {
                let swatches: Vec<&Mark> = self
                    .marks
                    .iter()
                    .filter(|m| m.points.iter().all(|&p| frame.contains(p, 0.0)))
                    .filter(|m| {
                        let (x, y) = m.points[m.points.len() - 1];
                        (y - l.centre).abs() <= 3.0 && x < l.at.0
                    })
                    .collect();
                let [swatch] = swatches[..] else {
                    panic!("legend entry {:?} has {} swatches", l.text, swatches.len())
                };
                // a line's just left of its label
                let end = swatch.points[swatch.points.len() - 1].0;
                assert!(
                    swatch.kind != Kind::Line || l.at.0 - end <= 12.0,
                    "legend entry {:?}: its swatch ends {} px left of it",
                    l.text,
                    l.at.0 - end
                );
                // the swatches of a legend stand in one column, a line's by its middle
                let xs = swatch.points.iter().map(|p| p.0);
                let centre = (xs.clone().fold(f64::INFINITY, f64::min)
                    + xs.fold(f64::NEG_INFINITY, f64::max))
                    / 2.0;
                let column = *swatch_column.get_or_insert(centre);
                assert!(
                    (centre - column).abs() <= 1.0,
                    "legend entry {:?}: its swatch is centred at x = {centre}, the others at {column}",
                    l.text
                );
                entries.push(Entry {
                    text: l.text.clone(),
                    kind: swatch.kind,
                    colour: swatch.colour.clone(),
                });
            }
        }
        entries
    }

    /// The marks of one kind and colour within a panel, its legend's swatches left out.
    fn series(&self, kind: Kind, colour: &str, chart: &Chart) -> Vec<&Mark> {
        let (top, bottom) = chart.band;
        self.marks
            .iter()
            .filter(|m| m.kind == kind && m.colour == colour && !self.in_a_frame(m))
            .filter(|m| m.points.iter().all(|p| p.1 > top && p.1 < bottom))
            .collect()
    }

    /// The one series an entry names, as one list of points.
    fn points_of(&self, e: &Entry, chart: &Chart) -> Vec<(f64, f64)> {
        let marks = self.series(e.kind, &e.colour, chart);
        if e.kind == Kind::Line {
            assert_eq!(marks.len(), 1, "{:?}: {} lines", e.text, marks.len());
        }
        marks
            .iter()
            .flat_map(|m| m.points.iter().copied())
            .collect()
    }

    /// The points of an entry's line, and then its dots, each compared in order with `data`:
    /// the misses.
    ///
    /// # Panics
    /// If the line or the dots are not one for each datum.
    fn misses_in_order(&self, e: &Entry, chart: &Chart, data: &[(f64, f64)]) -> Vec<String> {
        let line = self.points_of(e, chart);
        let dots = self.series(Kind::Dot, &e.colour, chart);
        assert_eq!(line.len(), data.len(), "{}: a point per datum", e.text);
        assert_eq!(dots.len(), data.len(), "{}: a dot per datum", e.text);
        let dots = dots.iter().map(|m| m.points[0]);
        line.into_iter()
            .zip(data)
            .chain(dots.zip(data))
            .filter_map(|(p, &want)| chart.miss(p, want).map(|m| format!("{}: {m}", e.text)))
            .collect()
    }

    /// The text of the one label containing `part`.
    /// The box of the one label that reads `text`.
    fn label_box(&self, text: &str) -> Rect {
        let l = self.labels.iter().find(|l| l.text == text);
        bounds(&l.unwrap_or_else(|| panic!("no label {text:?}")).poly)
    }

    fn text_with(&self, part: &str) -> &str {
        let found: Vec<&Label> = self
            .labels
            .iter()
            .filter(|l| l.text.contains(part))
            .collect();
        let [l] = found[..] else {
            panic!("{} labels contain {part:?}", found.len())
        };
        &l.text
    }
}

/// The figure drawn, its panels and its legend.
fn plotted(name: &str) -> (Drawing, Vec<Chart>, Vec<Entry>) {
    let d = figure(name);
    let charts = charts(&d);
    let legend = d.legend();
    (d, charts, legend)
}

/// A figure of one panel: the figure drawn, its panel and its legend.
fn plotted_alone(name: &str) -> (Drawing, Chart, Vec<Entry>) {
    let (d, mut charts, legend) = plotted(name);
    assert_eq!(charts.len(), 1, "{name}: {} panels", charts.len());
    (d, charts.remove(0), legend)
}

/// The number written right after `key` in `text`.
fn number_after(text: &str, key: &str) -> f64 {
    let at = text
        .find(key)
        .unwrap_or_else(|| panic!("no {key:?} in {text:?}"))
        + key.len();
    let rest = &text[at..];
    let end = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (c == '-' && i == 0)))
        .map_or(rest.len(), |(i, _)| i);
    let number = rest[..end].trim_end_matches('.');
    number
        .parse()
        .unwrap_or_else(|_| panic!("{number:?} after {key:?} in {text:?}"))
}

/// The number written right before `key` in `text`.
fn number_before(text: &str, key: &str) -> f64 {
    let head = text[..text
        .find(key)
        .unwrap_or_else(|| panic!("no {key:?} in {text:?}"))]
        .trim_end();
    let start = head
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |i| i + 1);
    head[start..]
        .parse()
        .unwrap_or_else(|_| panic!("{:?} before {key:?} in {text:?}", &head[start..]))
}

/// A committed file under `book/runs/`.
fn run_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("book/runs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One column of a CSV log, by its header name: a value per row, None where the field is empty.
fn column(csv: &str, name: &str) -> Vec<Option<f64>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let c = header
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    lines
        .map(|line| {
            let field = line.split(',').nth(c).unwrap_or("");
            (!field.is_empty()).then(|| {
                field
                    .parse()
                    .unwrap_or_else(|_| panic!("{name} = {field:?}"))
            })
        })
        .collect()
}

fn assert_none(problems: &[String]) {
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_positional_curves_read_back_as_the_encoding_columns_their_legend_names() {
    let (d, chart, legend) = plotted_alone("pe-curves");
    let d_model = number_after(d.text_with("d_model = "), "d_model = ") as usize;
    // the positions the axis spans; the encoding exists only at whole positions
    let (first, last) = (chart.x.lo as usize, chart.x.hi as usize);
    let pe: DMatrix<f64> = sinusoidal(last + 1, d_model);
    // a pixel is about 0.16 of a position, so a point names its position unambiguously, and
    // about 0.01 of the encoding, the tolerance of each value read
    assert!(chart.x.resolution(1.0) < 0.5);
    let mut problems = Vec::new();
    assert!(legend.len() >= 2, "{} legend entries", legend.len());
    for e in &legend {
        let col = number_after(&e.text, "column ") as usize;
        // §3.5: dimension 2i is a sinusoid of wavelength 2 pi 10000^(2i / d_model)
        let wavelength = number_after(&e.text, "wavelength ");
        let want = 2.0 * std::f64::consts::PI * 10000f64.powf(col as f64 / d_model as f64);
        assert!(
            (wavelength - want).abs() <= 0.05,
            "{}: the paper gives a wavelength of {want:.2}",
            e.text
        );
        let mut read = |p: (f64, f64)| -> usize {
            let pos = chart.x.value(p.0).round().clamp(0.0, last as f64);
            if let Some(m) = chart.miss(p, (pos, pe[(pos as usize, col)])) {
                problems.push(format!("{}: {m}", e.text));
            }
            pos as usize
        };
        let positions: Vec<usize> = d.points_of(e, &chart).into_iter().map(&mut read).collect();
        assert_eq!(
            positions,
            (first..=last).collect::<Vec<_>>(),
            "{}: the positions drawn, in order",
            e.text
        );
        // the dots on the fastest column mark the same points
        let dots = d.series(Kind::Dot, &e.colour, &chart);
        for m in &dots {
            read(m.points[0]);
        }
        // only the fastest column, a dot at each position, is drawn thin; the others thick
        let fastest = col == 0;
        let width = d.series(Kind::Line, &e.colour, &chart)[0].width;
        assert_eq!(
            (dots.len(), width),
            if fastest {
                (last - first + 1, 1.0)
            } else {
                (0, 2.0)
            },
            "{}: the dots and the line's width",
            e.text
        );
    }
    assert!(
        legend.iter().any(|e| e.text.starts_with("column 0:")),
        "column 0 drawn"
    );
    assert_none(&problems);
}

#[test]
fn the_learning_rate_curves_read_back_as_eq_3_for_the_settings_their_legend_names() {
    let (d, chart, legend) = plotted_alone("lrate");
    // the y axis is in the unit its title names: "learning rate (× 10^-3)"
    let unit = 10f64.powf(number_after(d.text_with("learning rate"), "× 10^"));
    // a pixel is about 63 steps across and 0.004 × 10^-3 up; each vertex must lie within a
    // pixel, both ways, of a point (step, lrate(step)) of Eq. 3 at a whole step
    assert!(legend.len() >= 2, "{} legend entries", legend.len());
    let mut problems = Vec::new();
    for e in &legend {
        let d_model = number_after(&e.text, "d_model = ") as usize;
        let warmup = number_after(&e.text, "warmup = ") as usize;
        let points = d.points_of(e, &chart);
        for &p in &points {
            let from = chart.x.value(p.0 - PX).floor().max(0.0) as usize;
            let to = chart.x.value(p.0 + PX).ceil().max(0.0) as usize;
            let on_curve = (from..=to).any(|step| {
                let want = (step as f64, lrate(d_model, warmup, step) / unit);
                chart.miss(p, want).is_none()
            });
            if !on_curve {
                problems.push(format!(
                    "{}: the point at {p:?} reads ({:.0}, {:.4}), off Eq. 3",
                    e.text,
                    chart.x.value(p.0),
                    chart.y.value(p.1)
                ));
            }
        }
        // the curve runs across the whole axis
        let (start, end) = (points[0], points[points.len() - 1]);
        for (p, want) in [(start, chart.x.lo), (end, chart.x.hi)] {
            if (chart.x.pixel(want) - p.0).abs() > PX {
                problems.push(format!("{}: an end at {p:?}, not at step {want}", e.text));
            }
        }
        // only the paper's base model (§5.3: d_model 512, warmup_steps 4000) is named base
        assert_eq!(
            e.text.ends_with("(base)"),
            (d_model, warmup) == (512, 4000),
            "{}",
            e.text
        );
    }
    // the highest peak stands near the top of the plot: the axis is not stretched past it
    let peak = legend
        .iter()
        .map(|e| {
            let (d_model, warmup) = (
                number_after(&e.text, "d_model = "),
                number_after(&e.text, "warmup = "),
            );
            lrate(d_model as usize, warmup as usize, warmup as usize) / unit
        })
        .fold(0.0, f64::max);
    let top = chart.y.value(chart.band.0);
    assert!(
        (0.8..1.0).contains(&(peak / top)),
        "the highest peak, {peak:.3}, under a plot {top:.3} tall"
    );
    assert!(
        legend.iter().any(|e| e.text.ends_with("(base)")),
        "no base model"
    );
    assert_none(&problems);
}

/// How many standard errors a measured point may stray from its expectation: for the twenty
/// points of a figure, a false alarm for fewer than one seed in a thousand.
const Z: f64 = 4.5;

#[test]
fn the_variance_figure_reads_back_as_footnote_4s_prediction_within_its_sampling_error() {
    let (d, chart, legend) = plotted_alone("dot-variance");
    assert!(
        chart.x.log && chart.y.log,
        "footnote 4 is drawn on log-log axes"
    );
    let entry = |part: &str, kind: Kind| {
        let found: Vec<&Entry> = legend
            .iter()
            .filter(|e| e.text.contains(part) && e.kind == kind)
            .collect();
        let [e] = found[..] else {
            panic!(
                "{} legend entries of {kind:?} contain {part:?}",
                found.len()
            )
        };
        e
    };
    let prediction = entry("variance = d_k", Kind::Line);
    let raw = entry("sample variance of q · k", Kind::Dot);
    let scaled = entry("/ sqrt(d_k)", Kind::Triangle);
    let samples = number_before(d.text_with("samples per point"), " samples per point");

    // The sample variance of n draws of q·k. Its components are uniform on [-√3, √3] (mean 0,
    // variance 1, E u^4 = 9/5: the library's experiment), so a product q_i k_i has E x^4 = 81/25
    // and a sum of d_k of them the fourth moment 3 d_k^2 + (81/25 - 3) d_k: the sample variance
    // has a relative standard error sqrt((2 + (81/25 - 3) / d_k) / n), 2.4 % at most for
    // n = 4000. A point may stray Z of those, and a pixel along each axis (log axes: a pixel is
    // about 1 % of d_k across and 2.6 % of the variance up).
    let fourth_moment_excess = (9.0f64 / 5.0).powi(2) - 3.0;
    let allowed = |d_k: f64| {
        let se = ((2.0 + fourth_moment_excess / d_k) / samples).sqrt();
        -(1.0 - Z * se).ln() + PX / chart.x.per.abs() + PX / chart.y.per.abs()
    };
    let mut problems = Vec::new();
    let read = |p: (f64, f64)| (chart.x.value(p.0), chart.y.value(p.1));
    let dots = d.points_of(raw, &chart);
    let triangles = d.points_of(scaled, &chart);
    assert!(dots.len() >= 3, "{} measured points", dots.len());
    assert_eq!(
        triangles.len(),
        dots.len(),
        "a scaled point for each measured one"
    );
    for (&dot, &triangle) in dots.iter().zip(&triangles) {
        let (d_k, variance) = read(dot);
        // the prediction: variance d_k; scaled by 1/sqrt(d_k), variance 1
        if (variance / d_k).ln().abs() > allowed(d_k) {
            problems.push(format!(
                "at d_k = {d_k:.1} the variance reads {variance:.2}"
            ));
        }
        let (d_k_scaled, scaled_variance) = read(triangle);
        if (chart.x.pixel(d_k_scaled) - dot.0).abs() > PX {
            problems.push(format!(
                "a scaled point at d_k = {d_k_scaled:.1}, the measured one at {d_k:.1}"
            ));
        }
        if scaled_variance.ln().abs() > allowed(d_k) {
            problems.push(format!(
                "at d_k = {d_k:.1} the scaled variance reads {scaled_variance:.3}"
            ));
        }
    }
    // the prediction line is variance = d_k end to end, and the line in the scaled points'
    // colour is variance 1
    for p in d.points_of(prediction, &chart) {
        let d_k = chart.x.value(p.0);
        problems.extend(chart.miss(p, (d_k, d_k)));
    }
    let ones = d.series(Kind::Line, &scaled.colour, &chart);
    assert_eq!(ones.len(), 1, "one line at variance 1");
    for &p in &ones[0].points {
        problems.extend(chart.miss(p, (chart.x.value(p.0), 1.0)));
    }
    assert_none(&problems);
}

#[test]
fn the_saturation_figure_reads_back_as_the_largest_softmax_weight_within_its_sampling_error() {
    let (d, chart, legend) = plotted_alone("softmax-saturation");
    let caption = d.text_with("attention weights");
    let keys = number_after(caption, "Largest of ") as usize;
    let trials = number_after(caption, "mean of ");

    // The same experiment, run independently (its own seed, more queries) through the library:
    // q and k with components uniform on [-√3, √3] (mean 0, variance 1, as in footnote 4), the
    // largest weight of softmax(q k^T / sqrt(d_k)) and of softmax(q k^T). For each d_k: the
    // mean and the standard deviation of one query's largest weight, of both.
    let queries = 1000;
    let mut rng = StdRng::seed_from_u64(20_170_612);
    let mut expect = |d_k: usize| -> [(f64, f64); 2] {
        let a = 3f64.sqrt();
        let mut sums = [[0.0; 2]; 2]; // [scaled, unscaled] x [sum, sum of squares]
        for _ in 0..queries {
            let q = DMatrix::from_fn(1, d_k, |_, _| rng.random_range(-a..=a));
            let k = DMatrix::from_fn(keys, d_k, |_, _| rng.random_range(-a..=a));
            let v = DMatrix::zeros(keys, 1);
            let scaled = scaled_dot_product_attention(&q, &k, &v, None).weights.max();
            let unscaled = softmax_rows(&(&q * k.transpose())).max();
            for (s, w) in sums.iter_mut().zip([scaled, unscaled]) {
                s[0] += w;
                s[1] += w * w;
            }
        }
        sums.map(|[s, s2]| {
            let mean = s / queries as f64;
            (mean, (s2 / queries as f64 - mean * mean).max(0.0).sqrt())
        })
    };
    // The figure's mean of `trials` queries and this one of `queries` differ by a standard
    // deviation of sd sqrt(1/trials + 1/queries); a point may stray Z of those and a pixel (about
    // 0.004 of a weight). d_k is read to a pixel, 1 % of d_k, and named by the nearest whole
    // number: within that 1 % the mean moves by under 0.003.
    let mut problems = Vec::new();
    let mut expected: std::collections::BTreeMap<usize, [(f64, f64); 2]> = Default::default();
    let mut curves = 0;
    for e in &legend {
        if e.text.starts_with("uniform weights") {
            assert_eq!(number_after(&e.text, "1/") as usize, keys, "{}", e.text);
            // 1/keys end to end
            for p in d.points_of(e, &chart) {
                problems.extend(chart.miss(p, (chart.x.value(p.0), 1.0 / keys as f64)));
            }
            continue;
        }
        let which = usize::from(!e.text.contains("/ sqrt(d_k)"));
        curves += 1;
        let points = d.points_of(e, &chart);
        assert!(points.len() >= 3, "{}: {} points", e.text, points.len());
        for &p in &points {
            let (x, weight) = (chart.x.value(p.0), chart.y.value(p.1));
            let d_k = x.round() as usize;
            let (mean, sd) = expected.entry(d_k).or_insert_with(|| expect(d_k))[which];
            let allowed = Z * sd * (1.0 / trials + 1.0 / queries as f64).sqrt()
                + PX * chart.y.resolution(mean);
            if (weight - mean).abs() > allowed {
                problems.push(format!(
                    "{}: at d_k = {d_k} the largest weight reads {weight:.3}, expected {mean:.3} ± {allowed:.3}",
                    e.text
                ));
            }
        }
        // the dots mark the line's points
        for m in d.series(Kind::Dot, &e.colour, &chart) {
            let p = m.points[0];
            if !points
                .iter()
                .any(|q| (q.0 - p.0).abs() <= PX && (q.1 - p.1).abs() <= PX)
            {
                problems.push(format!("{}: a dot at {p:?} off its line", e.text));
            }
        }
    }
    assert_eq!(curves, 2, "with and without the scale");
    assert_none(&problems);
}

#[test]
fn the_label_smoothing_bars_read_back_as_the_smoothed_distribution_of_their_title() {
    let d = figure("label-smoothing");
    let title = d.text_with("Target token");
    let target = number_after(title, "Target token ") as usize;
    let vocab = number_after(title, " of ") as usize;
    let eps = number_after(title, "eps_ls = ");
    let caption = d.text_with("eps spread over");
    assert!(caption.contains("over all V classes"));
    let q: DMatrix<f64> = smoothed_targets(&[target], vocab, eps, Spread::AllClasses);
    // the caption's two probabilities, to its four decimals
    let on = number_after(caption, "eps/V = ");
    let off = number_after(caption, "target, eps/V = ");
    let other = (target + 1) % vocab;
    assert!(
        (on - q[(0, target)]).abs() <= 5e-5 && (off - q[(0, other)]).abs() <= 5e-5,
        "{caption}: q is {} on the target and {} elsewhere",
        q[(0, target)],
        q[(0, other)]
    );

    // the probability axis: the column of tick labels left of the bars
    let nums = numbers(&d);
    let left = nums
        .iter()
        .map(|(l, _)| l.at.0)
        .fold(f64::INFINITY, f64::min);
    let ticks: Vec<(f64, f64)> = nums
        .iter()
        .filter(|(l, _)| l.at.0 == left)
        .map(|(l, v)| (l.centre, *v))
        .collect();
    let y = Axis::from_ticks(&ticks, "the probability axis");
    // a pixel is 1/260 of probability; the bars are drawn at fractional pixels, so the
    // reading is as good as the ticks' placement (within a pixel)
    let zero = y.pixel(0.0);
    let index_under = |r: &Rect| -> usize {
        let found: Vec<f64> = nums
            .iter()
            .filter(|(l, _)| l.at.1 > zero && r.contains((l.at.0, r.y), 0.0))
            .map(|(_, v)| *v)
            .collect();
        let [j] = found[..] else {
            panic!("a bar at {r:?} with index labels {found:?}")
        };
        j as usize
    };
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (k, r) in d.rects.iter().enumerate() {
        let j = index_under(r);
        let (bottom, top) = (y.value(r.y + r.h), y.value(r.y));
        if (zero - (r.y + r.h)).abs() > PX {
            problems.push(format!("bar {j} stands on {bottom:.4}"));
        }
        // the outlined bar is the one-hot target, the filled ones the smoothed distribution
        let want = if d.boxed[k] {
            if j == target {
                1.0
            } else {
                0.0
            }
        } else {
            seen.push(j);
            // its value printed above it, to the decimals printed
            let printed = nums
                .iter()
                .filter(|(l, _)| l.at.1 < r.y && r.contains((l.at.0, r.y), 0.0))
                .max_by(|a, b| a.0.at.1.total_cmp(&b.0.at.1))
                .unwrap_or_else(|| panic!("bar {j} without its value"));
            // just above it
            let gap = r.y - bounds(&printed.0.poly).y - bounds(&printed.0.poly).h;
            if !(0.0..=12.0).contains(&gap) {
                problems.push(format!("bar {j}'s value is {gap:.1} px above it"));
            }
            let decimals = printed.0.text.split('.').nth(1).map_or(0, str::len);
            if (printed.1 - q[(0, j)]).abs() > 0.5 * 10f64.powi(-(decimals as i32)) {
                problems.push(format!(
                    "bar {j} is labelled {}, q = {}",
                    printed.0.text,
                    q[(0, j)]
                ));
            }
            q[(0, j)]
        };
        if (y.pixel(want) - r.y).abs() > PX {
            problems.push(format!(
                "bar {j} reads {top:.4}, the distribution gives {want:.4}"
            ));
        }
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (0..vocab).collect::<Vec<_>>(),
        "one filled bar per entry"
    );
    assert_eq!(
        d.boxed.iter().filter(|&&b| b).count(),
        1,
        "one outlined target"
    );
    // the grid lines and the base line span the bars' slots, no more and no less (each bar
    // stands in the middle of its slot, half the gap between two bars from its edges)
    let mut filled: Vec<Rect> = (0..d.rects.len())
        .filter(|&k| !d.boxed[k])
        .map(|k| d.rects[k])
        .collect();
    filled.sort_by(|a, b| a.x.total_cmp(&b.x));
    let (first, last) = (filled[0], filled[filled.len() - 1]);
    let inset = (filled[1].x - first.x - first.w) / 2.0;
    let (from, to) = (first.x - inset, last.x + last.w + inset);
    // the axes' names: "vocabulary entry" centred under the bars, "target probability"
    // centred beside them
    assert_axis_names(
        &d,
        ("vocabulary entry", (from + to) / 2.0, zero),
        (
            "target probability",
            (y.pixel(0.0) + y.pixel(1.0)) / 2.0,
            from,
            1.0,
        ),
    );
    let level: Vec<_> = d.lines.iter().filter(|(a, b)| a.1 == b.1).collect();
    assert!(level.len() >= 5, "{} level lines", level.len());
    for (a, b) in level {
        assert!(
            (a.0.min(b.0) - from).abs() <= 0.5 && (a.0.max(b.0) - to).abs() <= 0.5,
            "a line from {a:?} to {b:?} across slots from x = {from} to {to}"
        );
    }
    // each bar, filled or outlined, stands centred on its index; the outline encloses the
    // filled bar of its entry; the caption is the lowest text, at the foot of the picture
    for r in &d.rects {
        let j = index_under(r);
        let index = nums
            .iter()
            .find(|(l, v)| l.at.1 > zero && *v == j as f64 && l.at.0 > from)
            .unwrap()
            .0;
        assert!(
            (r.x + r.w / 2.0 - index.at.0).abs() <= 0.5,
            "the bar {r:?} is not centred on its index {j} at x = {}",
            index.at.0
        );
    }
    // every bar stands on the base line, the lowest level line
    let base = d
        .lines
        .iter()
        .filter(|(a, b)| a.1 == b.1)
        .map(|(a, _)| a.1)
        .fold(0.0, f64::max);
    for r in &d.rects {
        assert!(
            (r.y + r.h - base).abs() <= 0.01,
            "the bar {r:?} does not stand on the base line at y = {base}"
        );
    }
    let outline = d.rects[d.boxed.iter().position(|&b| b).unwrap()];
    let inner = filled.iter().find(|f| index_under(f) == target).unwrap();
    assert!(
        outline.x < inner.x && outline.x + outline.w > inner.x + inner.w,
        "the one-hot outline {outline:?} does not enclose the target's bar {inner:?}"
    );
    let foot = d
        .labels
        .iter()
        .map(|l| bounds(&l.poly))
        .fold(0.0, |a: f64, b| a.max(b.y + b.h));
    let c = d.label_box(caption);
    assert!(
        c.y + c.h == foot && d.height - foot <= 20.0,
        "the caption at {c:?} is not the lowest text, at the foot of {} px",
        d.height
    );
    assert_none(&problems);
}

#[test]
fn the_training_curves_read_back_as_their_committed_logs() {
    for (name, log) in [
        ("training-copy", "copy.csv"),
        ("training-translate", "translate.csv"),
    ] {
        let csv = run_file(log);
        let (d, charts, legend) = plotted(name);
        let [loss_panel, held_out] = &charts[..] else {
            panic!("{name}: {} panels", charts.len())
        };
        let titled = |chart: &Chart| {
            let l = d
                .labels
                .iter()
                .find(|l| l.rotated && (chart.band.0..chart.band.1).contains(&l.at.1))
                .unwrap_or_else(|| panic!("{name}: a panel without a y title"));
            l.text.as_str()
        };
        assert_eq!(titled(loss_panel), "loss (nats)", "{name}");
        assert_eq!(titled(held_out), "%", "{name}");
        let step = column(&csv, "step");
        let mut problems = Vec::new();

        // the loss panel: its one coloured line is the loss column, a point per logged step,
        // in order. A pixel is about 2.3 steps across and 0.02 nats up for the copy run, 9.3
        // steps and 0.03 nats for the translate run.
        let lines: Vec<&Mark> = d
            .marks
            .iter()
            .filter(|m| m.kind == Kind::Line && m.colour != "#000000")
            .filter(|m| m.points.iter().all(|p| p.1 < loss_panel.band.1))
            .collect();
        let [line] = lines[..] else {
            panic!("{name}: {} lines in the loss panel", lines.len())
        };
        let loss = column(&csv, "loss");
        assert_eq!(
            line.points.len(),
            loss.len(),
            "{name}: a point per logged step"
        );
        for ((&p, s), l) in line.points.iter().zip(&step).zip(&loss) {
            problems.extend(loss_panel.miss(p, (s.unwrap(), l.unwrap())));
        }
        // the axis is not stretched past the highest loss: no tick stands a whole tick step
        // above it
        let highest = loss.iter().flatten().fold(0.0, |a: f64, &b| a.max(b));
        let ticks = &loss_panel.y.ticks;
        let spacing = ticks[1] - ticks[0];
        assert!(
            loss_panel.y.hi - highest < spacing,
            "{name}: the highest loss is {highest:.3}, the loss axis ticks up to {}",
            loss_panel.y.hi
        );

        // the held-out panel: a line per legend entry, the column the entry names, in percent,
        // at the steps where the log has it (and a dot on each). A pixel is about 0.6 % up, and
        // 2.4 steps (copy) or 9.6 steps (translate) across.
        assert_eq!(legend.len(), 2, "{name}: {legend:?}");
        // each curve of the figure in a colour of its own
        assert!(
            legend[0].colour != legend[1].colour && legend.iter().all(|e| e.colour != line.colour),
            "{name}: the loss in {}, the held-out curves in {legend:?}",
            line.colour
        );
        for e in &legend {
            let name_of = match e.text.as_str() {
                "exact match (greedy)" => "heldout_exact_match",
                "token accuracy (teacher forcing)" => "heldout_token_accuracy",
                other => panic!("{name}: a legend entry {other:?}"),
            };
            let data: Vec<(f64, f64)> = step
                .iter()
                .zip(column(&csv, name_of))
                .filter_map(|(s, v)| v.map(|v| (s.unwrap(), 100.0 * v)))
                .collect();
            assert!(data.len() >= 3, "{name}: {} evaluations", data.len());
            problems.extend(d.misses_in_order(e, held_out, &data));
        }
        assert_none(&problems);
    }
}

#[test]
fn the_layer_timing_figure_reads_back_as_its_committed_run() {
    let run: serde_json::Value = serde_json::from_str(&run_file("table1.json")).unwrap();
    let (d, chart, legend) = plotted_alone("layer-timing");
    assert!(
        chart.x.log && chart.y.log,
        "n and the time are drawn on log axes"
    );
    let caption = d.text_with("one forward pass");
    let d_model = run["d"].as_f64().unwrap();
    assert_eq!(number_after(caption, "d = "), d_model, "the caption's d");
    assert!(
        caption.contains(run["dtype"].as_str().unwrap()),
        "{caption}"
    );
    // the run is in seconds, the axis in milliseconds
    d.text_with("milliseconds");
    let rows = run["rows"].as_array().unwrap();
    // a tick at every n measured, and at every power of ten of milliseconds the lines span
    let ns: Vec<f64> = rows.iter().map(|r| r["n"].as_f64().unwrap()).collect();
    assert_eq!(chart.x.ticks, ns, "the ticks of n");
    let ms = rows.iter().flat_map(|r| {
        let r = r.as_object().unwrap();
        r.iter()
            .filter(|(k, _)| k.ends_with("_s"))
            .map(|(_, v)| v.as_f64().unwrap() * 1e3)
    });
    let (fastest, slowest) = ms.fold((f64::INFINITY, 0.0f64), |(a, b), t| (a.min(t), b.max(t)));
    let powers: Vec<f64> = (fastest.log10().floor() as i32..=slowest.log10().ceil() as i32)
        .map(|k| 10f64.powi(k))
        .collect();
    assert_eq!(chart.y.ticks, powers, "the ticks of milliseconds");
    // a pixel is about 1 % of n across and 4 % of the time up
    let mut problems = Vec::new();
    // every layer the run timed, and n = d
    let layers = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.ends_with("_s"))
        .count();
    assert_eq!(legend.len(), layers + 1, "{legend:?}");
    for e in &legend {
        if e.text == "n = d" {
            // dashed: every dash at n = d
            let dashes = d.series(Kind::Line, &e.colour, &chart);
            assert!(!dashes.is_empty(), "no line at n = d");
            for p in dashes.iter().flat_map(|m| &m.points) {
                problems.extend(chart.miss(*p, (d_model, chart.y.value(p.1))));
            }
            continue;
        }
        // "restricted self-attention (r = 32)": the key restricted_self_attention_s, and the
        // run's r
        let (layer, setting) = e.text.split_once(" (").unwrap_or((&e.text, ""));
        let key = format!("{}_s", layer.replace(['-', ' '], "_"));
        if let Some((name, value)) = setting.trim_end_matches(')').split_once(" = ") {
            assert_eq!(
                run[name].as_f64(),
                value.parse().ok(),
                "{}: the run's {name}",
                e.text
            );
        }
        let data: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| {
                let seconds = r[&key].as_f64().unwrap_or_else(|| panic!("no {key}"));
                (r["n"].as_f64().unwrap(), seconds * 1e3)
            })
            .collect();
        problems.extend(d.misses_in_order(e, &chart, &data));
    }
    assert_none(&problems);
}
