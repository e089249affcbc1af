//! The figures as a reader sees them, checked from the SVG the book ships: every element lies
//! inside the picture, no two labels are drawn over each other, a label placed in a box or a
//! cell fits inside it, every arrow of the data-flow diagram ends on the edge of a box or a
//! circle or at the label it points to, and the cells of a heatmap never cover each other
//! (beyond the 0.3 px by which a colour bar's strips overlap so that no seam shows).
//!
//! Text is measured without a font: a character is taken as half the font size wide (a narrow
//! one, like `i` or a space, as 0.3), and a line as 0.7 of the font size above the baseline and
//! 0.15 below. Real Helvetica and Arial run wider than that, so a label this test passes may
//! still touch its neighbour in a browser (`book/check-rendered.sh` looks at the page itself),
//! but one it refuses does overlap.

use aiayn::book::figures;

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
    /// Heatmap cells written as path squares.
    cells: Vec<Rect>,
    circles: Vec<(f64, f64, f64)>,
    /// Every point of every line, polyline and polygon.
    points: Vec<(f64, f64)>,
    /// The tip of every arrowhead (a triangle right after a polyline ending there).
    arrow_tips: Vec<(f64, f64)>,
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
                }
            }
            "path" => {
                let path = attr(tag, "d").unwrap();
                match path_cells(path) {
                    Some(cells) => {
                        for c in &cells {
                            d.points.extend(c.corners());
                        }
                        d.cells.extend(cells);
                    }
                    None => panic!("a path that is not cells: {}", &tag[..tag.len().min(120)]),
                }
            }
            "circle" => {
                let (cx, cy, r) = (num(tag, "cx"), num(tag, "cy"), num(tag, "r"));
                d.points.extend([(cx - r, cy - r), (cx + r, cy + r)]);
                d.circles.push((cx, cy, r));
            }
            "line" => {
                d.points.push((num(tag, "x1"), num(tag, "y1")));
                d.points.push((num(tag, "x2"), num(tag, "y2")));
            }
            "polyline" => {
                let p = point_list(attr(tag, "points").unwrap());
                last_polyline_end = p.last().copied();
                d.points.extend(p);
            }
            "polygon" => {
                let p = point_list(attr(tag, "points").unwrap());
                if p.len() == 3 && last_polyline_end == p.first().copied() {
                    d.arrow_tips.push(p[0]);
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

#[test]
fn a_label_placed_in_a_box_or_a_cell_fits_inside_it() {
    let mut problems = Vec::new();
    let mut fitted = 0;
    for (name, d) in drawings() {
        for l in d.labels.iter().filter(|l| !l.rotated) {
            // the smallest box or cell the label's anchor point is in
            let host = d
                .rects
                .iter()
                .chain(&d.cells)
                .filter(|r| r.contains(l.at, 0.0))
                .min_by(|a, b| (a.w * a.h).total_cmp(&(b.w * b.h)));
            if let Some(r) = host {
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
fn every_arrow_of_the_data_flow_ends_on_a_box_a_circle_or_a_label() {
    let d = read(
        &(figures::ALL
            .iter()
            .find(|f| f.name == "data-flow")
            .unwrap()
            .draw)()
        .unwrap(),
    );
    assert!(d.arrow_tips.len() >= 10, "{} arrows", d.arrow_tips.len());
    let boxes: Vec<&Rect> = d
        .rects
        .iter()
        .zip(&d.boxed)
        .filter_map(|(r, &b)| b.then_some(r))
        .collect();
    for &tip in &d.arrow_tips {
        let on_box = boxes.iter().any(|r| r.on_edge(tip, 1.0));
        let on_circle = d
            .circles
            .iter()
            .any(|&(cx, cy, r)| ((tip.0 - cx).hypot(tip.1 - cy) - r).abs() <= 1.0);
        // or just short of a label: the last arrow points at the output it names
        let at_label = d.labels.iter().any(|l| {
            let r = bounds(&l.poly);
            Rect {
                x: r.x - 6.0,
                y: r.y - 6.0,
                w: r.w + 12.0,
                h: r.h + 12.0,
            }
            .contains(tip, 0.0)
        });
        assert!(
            on_box || on_circle || at_label,
            "an arrow ends at {tip:?}, on no box, circle or label"
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
