//! The HTML of a report: the text of what the charts show (findings with their `FILE:LINE` places and record
//! texts, call names and counts per file), the charts' data as one JSON object, and the vendored uPlot (its
//! licence in the page) with the page's script, all inline so that the page needs no network.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::series::{self, BUCKETS};
use super::{FindingKind, Rank};
use crate::export::json;

const UPLOT_JS: &str = include_str!("vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("vendor/uPlot.min.css");
const UPLOT_LICENSE: &str = include_str!("vendor/LICENSE");
const PAGE_JS: &str = include_str!("page.js");
const PAGE_CSS: &str = include_str!("page.css");
/// Call names with their own line in the timeline (the others are summed as "other names").
const TIMELINE_NAMES: usize = 8;

/// `s` escaped for HTML text and attributes.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// A number for JSON: `null` for None, short forms for very small and large magnitudes.
fn num(v: Option<f64>) -> String {
    match v {
        None => "null".to_string(),
        Some(v) if v == 0.0 || (1e-4..1e15).contains(&v.abs()) => format!("{v}"),
        Some(v) => format!("{v:e}"),
    }
}

/// The vendored uPlot's version, from the banner of its minified file (`/*! ... (v1.6.32) */`).
fn uplot_version() -> &'static str {
    let banner = UPLOT_JS.lines().next().unwrap_or_default();
    banner.split_once("(v").and_then(|(_, v)| v.split_once(')')).map_or("(unknown version)", |(v, _)| v)
}

fn kind_class(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::NonFinite => "nonfinite",
        FindingKind::DidNotReturn => "noreturn",
        FindingKind::CudaError => "cudaerr",
    }
}

/// The chart data of all files as JSON (every `<` escaped, so it can sit in a `<script>` element).
fn data(ranks: &[Rank], top: &[String]) -> String {
    let tmax = ranks.iter().flat_map(|r| r.times.iter().map(|t| t.0)).fold(1.0f64, f64::max);
    let width = tmax.max(1.0) / BUCKETS as f64 * 1.000_001;
    let mut out = String::new();
    let names: Vec<String> = top.iter().map(|n| json(n)).collect();
    let _ = write!(out, "{{\"bucket\":{},\"names\":[{}],\"ranks\":[", num(Some(width)), names.join(","));
    for (r, rank) in ranks.iter().enumerate() {
        if r > 0 {
            out.push(',');
        }
        let order: Vec<&String> = rank.names.keys().collect();
        let ids: Vec<u32> =
            top.iter().map(|n| order.iter().position(|o| *o == n).map_or(u32::MAX, |i| i as u32)).collect();
        let rows = series::buckets(&rank.times, width, &ids);
        let rows: Vec<String> = rows
            .iter()
            .map(|row| format!("[{}]", row.iter().map(u32::to_string).collect::<Vec<_>>().join(",")))
            .collect();
        let mut marked: Vec<usize> = rank.finding_xs.iter().map(|x| ((x / width) as usize).min(BUCKETS - 1)).collect();
        marked.dedup();
        marked.sort_unstable();
        marked.dedup();
        let marked: Vec<String> = marked.iter().map(usize::to_string).collect();
        let _ = write!(
            out,
            "{{\"label\":{},\"timeline\":[{}],\"marked\":[{}],\"findings\":[",
            json(&rank.label),
            rows.join(","),
            marked.join(",")
        );
        for (i, f) in rank.findings.iter().enumerate() {
            let _ = write!(
                out,
                "{}{{\"id\":\"f-{r}-{i}\",\"x\":{},\"kind\":\"{}\",\"name\":{},\"arg\":{}}}",
                if i > 0 { "," } else { "" },
                num(Some(f.x)),
                kind_class(f.kind),
                json(&f.name),
                json(&f.arg)
            );
        }
        out.push_str("],\"series\":[");
        for (i, ((name, arg), s)) in rank.series.iter().enumerate() {
            let col = |f: &dyn Fn(&series::Point) -> String| s.points.iter().map(f).collect::<Vec<_>>().join(",");
            let _ = write!(
                out,
                "{}{{\"name\":{},\"arg\":{},\"total\":{},\"x\":[{}],\"min\":[{}],\"max\":[{}],\"mean\":[{}],\
                 \"nan\":[{}],\"inf\":[{}],\"replay\":[{}]}}",
                if i > 0 { "," } else { "" },
                json(name),
                json(arg),
                s.total,
                col(&|p| format!("{:.6}", p.x)),
                col(&|p| num(p.min)),
                col(&|p| num(p.max)),
                col(&|p| num(p.mean)),
                col(&|p| p.nan.to_string()),
                col(&|p| p.inf.to_string()),
                col(&|p| u8::from(p.replay).to_string()),
            );
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out.replace('<', "\\u003c")
}

/// The whole page.
pub fn html(ranks: &[Rank]) -> String {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, count) in ranks.iter().flat_map(|r| r.names.iter()) {
        *totals.entry(name).or_default() += count.calls;
    }
    let mut top: Vec<(&str, u64)> = totals.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top: Vec<String> = top.iter().take(TIMELINE_NAMES).map(|(n, _)| n.to_string()).collect();

    let mut h = String::with_capacity(1 << 20);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>flashlog report</title>\n");
    let _ = write!(h, "<style>{UPLOT_CSS}</style>\n<style>{PAGE_CSS}</style>\n</head><body>\n");
    h.push_str("<pre id=\"errors\"></pre>\n<h1>flashlog report</h1>\n");
    let calls: usize = ranks.iter().map(|r| r.times.len()).sum();
    let timed = ranks.iter().filter(|r| r.timed).count();
    let spread = "records carry their time to the second: within a second, calls are spread evenly in the order of \
                  their records (the order is exact, distances inside a second are not measured ones)";
    let time_note = match timed {
        0 => format!("Times: {spread}."),
        t if t == ranks.len() => "Times: the records' own, to the microsecond (their correlation lines).".to_string(),
        t => format!("Times: in {t} of the files, the records' own to the microsecond (their correlation lines); in the others, {spread}."),
    };
    let _ = writeln!(h, "<p class=\"note\">{} files, {calls} calls and graph replays. {time_note}</p>", ranks.len());

    // The first NaN/Inf, linked to its record below.
    let first = ranks
        .iter()
        .enumerate()
        .flat_map(|(r, rank)| rank.findings.iter().enumerate().map(move |(i, f)| (r, i, f)))
        .filter(|(_, _, f)| f.kind == FindingKind::NonFinite)
        .min_by(|a, b| a.2.x.total_cmp(&b.2.x).then(a.0.cmp(&b.0)));
    match first {
        Some((r, i, f)) => {
            let _ = writeln!(
                h,
                "<p id=\"first\">First NaN/Inf: <a class=\"place\" href=\"#f-{r}-{i}\">{}:{}</a> ({}) {}</p>",
                esc(&ranks[r].path),
                f.line,
                esc(&ranks[r].who),
                esc(&f.what)
            );
        }
        None => h.push_str("<p id=\"first\">First NaN/Inf: none</p>\n"),
    }
    // Findings, listed after the charts with their records (there may be many).
    let mut f = String::from("<h2>Findings</h2>\n");
    for (r, rank) in ranks.iter().enumerate() {
        let _ = writeln!(f, "<h3>{}</h3>", esc(&rank.label));
        if rank.findings.is_empty() {
            f.push_str("<p>no NaN/Inf, no call that did not return, no CUDA error</p>\n");
        }
        for (i, x) in rank.findings.iter().enumerate() {
            let _ = writeln!(
                f,
                "<details class=\"finding {}\" id=\"f-{r}-{i}\"><summary><span class=\"place\">{}:{}</span> \
                 <span class=\"t\">t={:.3} s</span> {}</summary><pre class=\"record\">{}</pre></details>",
                kind_class(x.kind),
                esc(&rank.path),
                x.line,
                x.x,
                esc(&x.what),
                esc(&x.text)
            );
        }
        if rank.unlisted > 0 {
            let _ = writeln!(
                f,
                "<p class=\"note\">{} more NaN/Inf findings not listed (the first of each call name and argument \
                 is): flashlog summary {} counts them by name.</p>",
                rank.unlisted,
                esc(&rank.path)
            );
        }
    }

    // Statistics of a chosen call name and argument.
    h.push_str(
        "<h2>Statistics</h2>\n<p class=\"note\">min, max and mean of one argument over the calls and graph replays \
         of one name (left axis; a NaN or Inf statistic leaves a gap), NaN and Inf counts as marks (right axis). \
         Series beyond 2000 points keep, per bucket, the lowest min, the highest max and the calls with a NaN or \
         an Inf.</p>\n<p><label>call <select id=\"name\"></select></label> <label>argument <select id=\"arg\">\
         </select></label> <span id=\"shown\"></span></p>\n<div id=\"stats\"></div>\n",
    );
    // Calls over time.
    h.push_str(
        "<h2>Calls over time</h2>\n<p class=\"note\">Calls per time bucket and call name; red marks: \
                buckets with findings (click one to open its record).</p>\n",
    );
    for (r, rank) in ranks.iter().enumerate() {
        let _ = writeln!(h, "<h3>{}</h3>\n<div class=\"chart\" id=\"tl-{r}\"></div>", esc(&rank.label));
        h.push_str(
            "<table class=\"names\"><tr><th>calls</th><th>graph replays</th><th>failed or did not return</th>\
                    <th>with NaN/Inf</th><th>name</th></tr>\n",
        );
        for (name, c) in &rank.names {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"name\">{}</td></tr>",
                c.calls,
                c.replays,
                c.failed,
                c.nonfinite,
                esc(name)
            );
        }
        h.push_str("</table>\n");
    }

    h.push_str(&f);
    let _ = writeln!(
        h,
        "<details class=\"licence\"><summary>Charts drawn with uPlot {} (MIT licence)</summary><pre>{}</pre>\
         </details>",
        uplot_version(),
        esc(UPLOT_LICENSE)
    );
    let _ = writeln!(h, "<script type=\"application/json\" id=\"data\">{}</script>", data(ranks, &top));
    let _ = write!(h, "<script>{UPLOT_JS}</script>\n<script>{PAGE_JS}</script>\n</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_text_are_safe_in_json_and_html() {
        assert_eq!(
            (num(None), num(Some(0.0)), num(Some(1.5)), num(Some(1e-300))),
            ("null".into(), "0".into(), "1.5".into(), "1e-300".into())
        );
        assert_eq!(esc("<a href=\"x\">&</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
        assert!(data(&[], &["</script>".to_string()]).contains("\\u003c/script>"));
        assert_eq!(uplot_version(), "1.6.32"); // vendor/package.json pins it
    }
}
