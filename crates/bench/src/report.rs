//! One row per measured figure, printed as a Markdown table.

/// One measured figure: the median of its runs, with each run's value kept.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Which of the five figures.
    pub figure: String,
    /// What is measured.
    pub metric: String,
    /// The median over runs.
    pub value: f64,
    /// Unit suffix.
    pub unit: String,
    /// How many runs.
    pub runs: usize,
    /// Each run's value.
    pub samples: Vec<f64>,
    /// The goal and whether it is met.
    pub goal: Option<(String, bool)>,
    /// Anything a reader needs to read the figure right.
    pub note: String,
}

impl Figure {
    /// A figure without goal or note.
    pub fn new(figure: &str, metric: &str, value: f64, unit: &str, runs: usize) -> Figure {
        Figure {
            figure: figure.into(),
            metric: metric.into(),
            value,
            unit: unit.into(),
            runs,
            samples: Vec::new(),
            goal: None,
            note: String::new(),
        }
    }

    /// Keeps every run's value.
    pub fn samples(mut self, s: &[f64]) -> Figure {
        self.samples = s.to_vec();
        self
    }

    /// The goal, and whether the median meets it.
    pub fn goal(mut self, goal: &str, met: bool) -> Figure {
        self.goal = Some((goal.into(), met));
        self
    }

    /// A note.
    pub fn note(mut self, note: &str) -> Figure {
        self.note = note.into();
        self
    }
}

/// The median (the mean of the middle two for an even count); NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The `q` quantile (0..=1) by nearest rank; NaN when empty.
pub fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn fmt(v: f64, unit: &str) -> String {
    let n = if v.is_nan() {
        "n/a".to_owned()
    } else if v.abs() >= 1000.0 {
        group(v.round() as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    format!("{n}{unit}")
}

fn group(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// The table, in Markdown.
pub fn table(figures: &[Figure]) -> String {
    let mut out = String::from(
        "| figure | metric | median | runs | goal | met | notes |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for f in figures {
        let runs = if f.samples.len() > 1 {
            f.samples
                .iter()
                .map(|s| fmt(*s, ""))
                .collect::<Vec<_>>()
                .join(" / ")
        } else {
            f.runs.to_string()
        };
        let (goal, met) = match &f.goal {
            Some((g, m)) => (g.as_str(), if *m { "yes" } else { "**no**" }),
            None => ("", ""),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            f.figure,
            f.metric,
            fmt(f.value, &f.unit),
            runs,
            goal,
            met,
            f.note.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_three_is_the_middle_value() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0]), 2.5);
    }

    #[test]
    fn quantile_takes_the_nearest_rank() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&xs, 0.5), 50.0);
        assert_eq!(quantile(&xs, 0.99), 99.0);
    }

    #[test]
    fn large_values_are_grouped_by_thousands() {
        assert_eq!(fmt(1_234_567.4, ""), "1,234,567");
        assert_eq!(fmt(12.345, " s"), "12.3 s");
    }
}
