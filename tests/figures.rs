//! The figures as a reader sees them, checked from the SVG the book ships: every element lies
//! inside the picture, no two labels are drawn over each other, a label placed in a box or a
//! cell fits inside it, every arrow of the data-flow diagram ends on the edge of a box or a
//! circle or at the label it points to, and the cells of a heatmap never cover each other
//! (beyond the 0.3 px by which a colour bar's strips overlap so that no seam shows).
//!
//! The heatmaps are also read back as a reader reads them, by the figure's own legend and tick
//! labels alone: the positional-encoding heatmap gives PE(pos, j) in every cell, within the
//! legend's resolution; each row of the untrained attention heatmap (by its printed numbers)
//! and of the trained model's maps (by their colours on the weight legend) sums to one; and the
//! masked decoder self-attention shows no weight on a later position. The causal-mask figure's
//! three panels agree with each other (symmetric scores, -inf exactly after the diagonal,
//! weights that are the softmax of the printed row), and every number printed on a coloured
//! cell has at least WCAG's 3:1 contrast with it.
//!
//! Text is measured without a font: a character is taken as half the font size wide (a narrow
//! one, like `i` or a space, as 0.3), and a line as 0.7 of the font size above the baseline and
//! 0.15 below. Real Helvetica and Arial run wider than that, so a label this test passes may
//! still touch its neighbour in a browser (`book/check-rendered.sh` looks at the page itself),
//! but one it refuses does overlap.

use aiayn::book::figures;
use aiayn::positional::sinusoidal;
use nalgebra::DMatrix;

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

/// The labels that are numbers, with their values.
fn numbers(d: &Drawing) -> Vec<(&Label, f64)> {
    d.labels
        .iter()
        .filter_map(|l| l.text.replace('−', "-").parse().ok().map(|v| (l, v)))
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
fn each_row_of_the_untrained_attention_heatmap_reads_as_a_distribution() {
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
