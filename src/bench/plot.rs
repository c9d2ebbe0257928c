//! The plot: cards a second against concurrency, for the worker and the null
//! worker with no partner latency, drawn into an RGB buffer (text through
//! a system TrueType font) and written as a PNG.

use std::path::Path;
use std::time::Duration;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};

use super::BenchError;
use super::report::Results;
use super::stats::Spread;
use super::trial::Kind;

const WIDTH: usize = 960;
const HEIGHT: usize = 600;
/// The plot area's edges, in pixels from the left and from the top.
const LEFT: f32 = 90.0;
const RIGHT: f32 = 930.0;
const TOP: f32 = 70.0;
const BOTTOM: f32 = 530.0;

/// Fonts tried in turn; the first that loads is used.
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

type Rgb = [u8; 3];
const WHITE: Rgb = [255, 255, 255];
const INK: Rgb = [40, 40, 40];
const GRID: Rgb = [225, 225, 225];
const NULL_COLOUR: Rgb = [70, 110, 180];
const WORKER_COLOUR: Rgb = [220, 110, 30];

/// Draws the plot and writes it to `path`.
pub fn write(results: &Results, path: &Path) -> Result<(), BenchError> {
    let levels = &results.args.concurrency;
    let series: Vec<Series> = [
        (Kind::NullWorker, NULL_COLOUR),
        (Kind::Worker, WORKER_COLOUR),
    ]
    .into_iter()
    .map(|(kind, colour)| Series {
        kind,
        colour,
        points: levels
            .iter()
            .map(|&level| (level, results.cards_per_second(kind, level, Duration::ZERO)))
            .filter(|(_, spread)| !spread.median.is_nan())
            .collect(),
    })
    .collect();

    let highest = series
        .iter()
        .flat_map(|series| series.points.iter().map(|(_, spread)| spread.max))
        .fold(1.0, f64::max);
    let axes = Axes::new(levels, highest);
    let mut canvas = Canvas::new(load_font());
    axes.draw(&mut canvas);
    for one in &series {
        draw_series(&mut canvas, &axes, &one.points, one.colour);
    }
    legend(&mut canvas, &series);
    canvas.text(
        (LEFT + RIGHT) / 2.0,
        30.0,
        20.0,
        INK,
        "card-issuer: cards per second against concurrency, no partner latency",
        Anchor::Centre,
    );
    canvas.save(path)
}

/// One line of the plot: a subject's medians and spreads by concurrency.
struct Series {
    kind: Kind,
    colour: Rgb,
    points: Vec<(u16, Spread)>,
}

fn load_font() -> Option<FontVec> {
    FONTS.iter().find_map(|path| {
        let bytes = std::fs::read(path).ok()?;
        FontVec::try_from_vec(bytes).ok()
    })
}

/// Maps concurrency (log scale) and cards a second to pixels.
struct Axes {
    levels: Vec<u16>,
    x_from: f64,
    x_to: f64,
    y_to: f64,
    y_step: f64,
}

impl Axes {
    fn new(levels: &[u16], highest: f64) -> Self {
        let logs: Vec<f64> = levels.iter().map(|&l| f64::from(l.max(1)).log2()).collect();
        let low = logs.iter().copied().fold(f64::INFINITY, f64::min);
        let high = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let y_step = nice_step(highest / 5.0);
        Self {
            levels: levels.to_vec(),
            x_from: low - 0.4,
            x_to: high + 0.4,
            y_to: (highest / y_step).ceil() * y_step,
            y_step,
        }
    }

    fn x(&self, concurrency: u16) -> f32 {
        let log = f64::from(concurrency.max(1)).log2();
        let share = (log - self.x_from) / (self.x_to - self.x_from);
        LEFT + (RIGHT - LEFT) * share as f32
    }

    fn y(&self, cards_per_second: f64) -> f32 {
        BOTTOM - (BOTTOM - TOP) * (cards_per_second / self.y_to) as f32
    }

    fn draw(&self, canvas: &mut Canvas) {
        let mut value = 0.0;
        while value <= self.y_to + 1e-9 {
            let y = self.y(value);
            canvas.line(LEFT, y, RIGHT, y, GRID, 1.0);
            let label = format!("{value:.0}");
            canvas.text(LEFT - 8.0, y + 5.0, 14.0, INK, &label, Anchor::Right);
            value += self.y_step;
        }
        for &level in &self.levels {
            let x = self.x(level);
            canvas.line(x, TOP, x, BOTTOM, GRID, 1.0);
            let label = level.to_string();
            canvas.text(x, BOTTOM + 22.0, 14.0, INK, &label, Anchor::Centre);
        }
        canvas.line(LEFT, BOTTOM, RIGHT, BOTTOM, INK, 1.5);
        canvas.line(LEFT, TOP, LEFT, BOTTOM, INK, 1.5);
        let x_title = "concurrency (prefetch and partner calls in flight), log scale";
        let middle = (LEFT + RIGHT) / 2.0;
        canvas.text(middle, BOTTOM + 52.0, 15.0, INK, x_title, Anchor::Centre);
        canvas.text(LEFT, TOP - 12.0, 15.0, INK, "cards/s", Anchor::Centre);
    }
}

/// A round step of about `raw`: 1, 2 or 5 times a power of ten.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * magnitude)
}

/// Medians joined by a line; each with a bar from the smallest to the
/// largest round.
fn draw_series(canvas: &mut Canvas, axes: &Axes, points: &[(u16, Spread)], colour: Rgb) {
    for pair in points.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (x0, y0) = (axes.x(a.0), axes.y(a.1.median));
        let (x1, y1) = (axes.x(b.0), axes.y(b.1.median));
        canvas.line(x0, y0, x1, y1, colour, 2.5);
    }
    for (level, spread) in points {
        let x = axes.x(*level);
        let (low, high) = (axes.y(spread.min), axes.y(spread.max));
        canvas.line(x, low, x, high, colour, 1.5);
        canvas.line(x - 5.0, low, x + 5.0, low, colour, 1.5);
        canvas.line(x - 5.0, high, x + 5.0, high, colour, 1.5);
        canvas.dot(x, axes.y(spread.median), 5.0, colour);
    }
}

fn legend(canvas: &mut Canvas, series: &[Series]) {
    let (x, mut y) = (LEFT + 20.0, TOP + 20.0);
    for one in series {
        canvas.line(x, y, x + 30.0, y, one.colour, 2.5);
        canvas.dot(x + 15.0, y, 5.0, one.colour);
        let label = match one.kind {
            Kind::NullWorker => "null worker (broker flow only)",
            Kind::Worker => "worker against the simulator",
        };
        canvas.text(x + 40.0, y + 5.0, 15.0, INK, label, Anchor::Left);
        y += 24.0;
    }
    let note = "median of the rounds; bars from the smallest to the largest";
    canvas.text(x, y + 5.0, 13.0, INK, note, Anchor::Left);
}

/// Where a text's position is, along the text.
#[derive(Clone, Copy)]
enum Anchor {
    Left,
    Centre,
    Right,
}

/// An RGB image being drawn.
struct Canvas {
    pixels: Vec<u8>,
    font: Option<FontVec>,
}

impl Canvas {
    fn new(font: Option<FontVec>) -> Self {
        Self {
            pixels: WHITE.repeat(WIDTH * HEIGHT),
            font,
        }
    }

    /// Mixes `colour` into one pixel with `alpha` (0 to 1) coverage.
    fn blend(&mut self, x: i64, y: i64, colour: Rgb, alpha: f32) {
        if x < 0 || y < 0 || x >= WIDTH as i64 || y >= HEIGHT as i64 {
            return;
        }
        let at = (y as usize * WIDTH + x as usize) * 3;
        let alpha = alpha.clamp(0.0, 1.0);
        for (channel, value) in colour.iter().enumerate() {
            let old = f32::from(self.pixels[at + channel]);
            let new = old + (f32::from(*value) - old) * alpha;
            self.pixels[at + channel] = new.round() as u8;
        }
    }

    /// A filled disc with a softened edge.
    fn dot(&mut self, cx: f32, cy: f32, radius: f32, colour: Rgb) {
        let reach = radius.ceil() as i64 + 1;
        let (px, py) = (cx.round() as i64, cy.round() as i64);
        for y in py - reach..=py + reach {
            for x in px - reach..=px + reach {
                let distance = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                let coverage = (radius + 0.5 - distance).clamp(0.0, 1.0);
                if coverage > 0.0 {
                    self.blend(x, y, colour, coverage);
                }
            }
        }
    }

    /// A line `width` pixels wide, as discs along it.
    fn line(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, colour: Rgb, width: f32) {
        let length = ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt();
        let steps = (length * 2.0).ceil().max(1.0) as usize;
        let radius = width / 2.0;
        for step in 0..=steps {
            let t = step as f32 / steps as f32;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            if radius <= 0.75 {
                self.blend(x.round() as i64, y.round() as i64, colour, 1.0);
            } else {
                self.dot_hard(x, y, radius, colour);
            }
        }
    }

    /// A disc without blending its edge, so overlapping discs of a line do
    /// not darken it.
    fn dot_hard(&mut self, cx: f32, cy: f32, radius: f32, colour: Rgb) {
        let reach = radius.ceil() as i64;
        let (px, py) = (cx.round() as i64, cy.round() as i64);
        for y in py - reach..=py + reach {
            for x in px - reach..=px + reach {
                let distance = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
                if distance <= radius {
                    self.blend(x, y, colour, 1.0);
                }
            }
        }
    }

    /// Text on the baseline `y`; nothing when no font could be loaded.
    fn text(&mut self, x: f32, y: f32, size: f32, colour: Rgb, text: &str, anchor: Anchor) {
        let Some(font) = self.font.take() else {
            return;
        };
        let scaled = font.as_scaled(PxScale::from(size));
        let width: f32 = text
            .chars()
            .map(|c| scaled.h_advance(font.glyph_id(c)))
            .sum();
        let mut pen = match anchor {
            Anchor::Left => x,
            Anchor::Centre => x - width / 2.0,
            Anchor::Right => x - width,
        };
        for c in text.chars() {
            let id = font.glyph_id(c);
            let glyph = id.with_scale_and_position(size, point(pen, y));
            pen += scaled.h_advance(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let px = bounds.min.x as i64 + i64::from(gx);
                let py = bounds.min.y as i64 + i64::from(gy);
                self.blend(px, py, colour, coverage);
            });
        }
        self.font = Some(font);
    }

    fn save(&self, path: &Path) -> Result<(), BenchError> {
        let file = std::fs::File::create(path)
            .map_err(BenchError::io(format!("create {}", path.display())))?;
        let mut encoder =
            png::Encoder::new(std::io::BufWriter::new(file), WIDTH as u32, HEIGHT as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let failed = |error: png::EncodingError| {
            BenchError::Failed(format!("cannot write {}: {error}", path.display()))
        };
        let mut writer = encoder.write_header().map_err(failed)?;
        writer.write_image_data(&self.pixels).map_err(failed)?;
        writer.finish().map_err(failed)
    }
}
