//! Unit tests of the summary on logs written in the tests (the recorded FlashInfer logs are read by the
//! Python tests through the real executable).

use super::render::elide_end;
use super::*;

const EQ: &str = "================================================================================";
const DASH: &str = "--------------------------------------------------------------------------------";

fn summarise(logs: &[(&str, &str)]) -> Summary {
    let mut s = Summary::default();
    for (name, text) in logs {
        s.read(name, text.as_bytes()).unwrap();
    }
    s
}

fn call(stamp: &str, name: &str, in_nan: u64, out_nan: u64) -> String {
    format!(
        "{EQ}\n[{stamp}] FlashInfer API Call: {name}\n{DASH}\nPositional input arguments:\n  arg[0]:\n    Tensor(\n      shape=(2,)\n      nan_count={in_nan}\n      inf_count=0\n    )\n  arg[1]:\n    1e-06\nOutput value:\n  None\nTensor arguments after the call:\n  arg[0] (after):\n    nan_count={out_nan}\n    inf_count=0\n{EQ}\n\n"
    )
}

fn sysinfo(pid: u32, rank: Option<&str>) -> String {
    let rank = rank.map(|r| format!("Rank: {r}\n")).unwrap_or_default();
    format!(
        "{EQ}\n[2026-11-28 21:04:05] FlashInfer API Logging - System Information\n{EQ}\nflashlog version: 0.1.0\nProcess: {pid} (x)\n{rank}CUDA driver: <not loaded>\n{EQ}\n\n"
    )
}

fn python_sysinfo() -> String {
    format!("{EQ}\n[2026-11-28 21:04:05] FlashInfer API Logging - System Information\n{EQ}\nFlashInfer version: 0.7.4\nPyTorch version: 2.15.0\n{EQ}\n\n")
}

fn inputs(name: &str, tag: Option<(u64, u32)>) -> String {
    let line = tag.map(|(n, t)| format!("[call {name} #{n} thread {t}]\n")).unwrap_or_default();
    format!("{EQ}\n[2026-11-28 21:04:05] FlashInfer API Call: {name}\n{line}{DASH}\n(No explicit arguments)\n")
}

fn outputs(name: &str, tag: Option<(u64, u32)>, nan: u64) -> String {
    let line = tag.map(|(n, t)| format!("[call {name} #{n} thread {t}]\n")).unwrap_or_default();
    format!("{line}Output value:\n  None\nTensor arguments after the call:\n  arg[0] (after):\n    nan_count={nan}\n{EQ}\n\n")
}

#[test]
fn counts_and_first_nan() {
    let a = format!(
        "{}{}{}{}[2026-11-28 21:04:07] FlashInfer API Call: page.append\n",
        sysinfo(1, None),
        call("2026-11-28 21:04:05", "norm.rmsnorm", 0, 0),
        call("2026-11-28 21:04:06", "norm.rmsnorm", 0, 2),
        call("2026-11-28 21:04:06", "norm.rmsnorm", 1, 0)
    );
    let s = summarise(&[("rank0.log", &a)]);
    let rms = &s.names["norm.rmsnorm"];
    assert_eq!(rms.calls, 3);
    // 8 lines of system information, 20 per call record, nan_count on line 17 of the second.
    assert_eq!(rms.first_out.as_ref().unwrap().line, 8 + 20 + 17);
    assert_eq!(rms.first_out.as_ref().unwrap().arg, "arg[0]");
    assert_eq!(rms.first_in.as_ref().unwrap().stamp, "2026-11-28 21:04:06");
    assert_eq!(s.names["page.append"].calls, 1);
    assert_eq!(s.unparsed, 0);
    let (name, p, kind) = s.first_overall().unwrap();
    assert_eq!((name, kind, p.stamp.as_str()), ("norm.rmsnorm", "output", "2026-11-28 21:04:06"));
    assert_eq!(s.did_not_return.count + s.raised.count, 0);
    assert!(s.found_something());
    assert!(s.render().contains("file rank0.log: 1 run (pid 1), 8 records\n"));
}

#[test]
fn crashed_call_and_garbage() {
    let crashed = format!(
        "{}{EQ}\n[2026-11-28 21:04:05] FlashInfer API Call: gemm.bmm_fp8\n{DASH}\nPositional input arguments:\n  arg[0]:\n    3\nthis line is not in the grammar\n",
        sysinfo(1, None)
    );
    let s = summarise(&[("r.log", &crashed)]);
    assert_eq!(s.did_not_return.count, 1);
    assert_eq!(s.did_not_return.listed[0].0, "gemm.bmm_fp8");
    assert_eq!(s.did_not_return.listed[0].1.line, 10);
    assert_eq!(s.unparsed, 1);
    assert!(s.render().contains("did not return: r.log:10 [2026-11-28 21:04:05] gemm.bmm_fp8\n"));
    let garbage = summarise(&[("g.sh", "#!/bin/sh\necho hi\n")]);
    assert_eq!(garbage.files[0].records, 0);
    assert!(!garbage.found_something());
}

#[test]
fn interleaved_threads_pair_by_correlation_line() {
    // Thread 7's call #2 writes a NaN; thread 8's call #3 came between its two records. Pairing with "the latest
    // unfinished call" would blame thread 8's call.
    let text = format!(
        "{}{}{}{}{}",
        sysinfo(1, None),
        inputs("a.f", Some((2, 7))),
        inputs("b.g", Some((3, 8))),
        outputs("a.f", Some((2, 7)), 1),
        outputs("b.g", Some((3, 8)), 0)
    );
    let s = summarise(&[("t.log", &text)]);
    assert_eq!(s.did_not_return.count, 0);
    assert!(s.names["b.g"].first_out.is_none());
    let p = s.names["a.f"].first_out.as_ref().unwrap();
    assert_eq!(p.call, "thread 7 call #2");
    assert!(s.render().contains("first NaN/Inf overall: t.log:"));
    assert!(s.render().contains(" [2026-11-28 21:04:05] thread 7 call #2 arg[0] a.f output\n"));
}

#[test]
fn early_uncorrelated_inputs_of_the_first_thread() {
    // The first thread's inputs record was written before a second thread logged; its outputs record after.
    let text = format!(
        "{}{}{}{}{}",
        sysinfo(1, None),
        inputs("a.f", None),
        inputs("b.g", Some((2, 8))),
        outputs("a.f", Some((1, 7)), 3),
        outputs("b.g", Some((2, 8)), 0)
    );
    let s = summarise(&[("t.log", &text)]);
    assert_eq!((s.did_not_return.count, s.unmatched_outputs), (0, 0));
    assert_eq!(s.names["a.f"].first_out.as_ref().unwrap().call, "thread 7 call #1");
}

#[test]
fn processes_appending_to_one_file_pair_across_their_runs() {
    // Process 1's call is still running when process 2 writes its system information record (two ranks logging
    // into one file): its outputs record comes later and still pairs; the run order keeps its pid.
    let text = format!(
        "{}{}{}{}{}{}",
        sysinfo(1, None),
        inputs("a.f", Some((5, 11))),
        sysinfo(2, None),
        inputs("b.g", Some((1, 21))),
        outputs("a.f", Some((5, 11)), 1),
        outputs("b.g", Some((1, 21)), 0)
    );
    let s = summarise(&[("shared.log", &text)]);
    assert_eq!((s.did_not_return.count, s.unmatched_outputs), (0, 0));
    assert_eq!(s.names["a.f"].first_out.as_ref().unwrap().call, "thread 11 call #5");
    // A call of the first run whose outputs record never comes did not return, and is placed in its own run.
    let crashed = format!(
        "{}{}{}{}",
        sysinfo(1, None),
        inputs("a.f", Some((5, 11))),
        sysinfo(2, None),
        call("2026-11-28 21:04:06", "b.g", 0, 0)
    );
    let s = summarise(&[("shared.log", &crashed)]);
    assert_eq!((s.did_not_return.count, s.unmatched_outputs), (1, 0));
    assert_eq!(s.did_not_return.listed[0].1.run, 0);
    assert!(s.render().contains("did not return: shared.log:10 (run 1, pid 1) "), "{}", s.render());
}

#[test]
fn never_pairs_across_threads() {
    let text = format!("{}{}{}", sysinfo(1, None), inputs("a.f", Some((1, 7))), outputs("a.f", Some((1, 9)), 1));
    let s = summarise(&[("t.log", &text)]);
    assert_eq!((s.unmatched_outputs, s.did_not_return.count), (1, 1));
    // Its NaN is still reported, under the name and call its correlation line gives.
    assert_eq!(s.names["a.f"].first_out.as_ref().unwrap().call, "thread 9 call #1");
    let text = format!("{}{}", sysinfo(1, None), outputs("a.f", None, 1));
    assert!(summarise(&[("u.log", &text)]).names[UNPAIRED].first_out.is_some());
}

#[test]
fn flashinfer_grammar_keywords_defaults_and_output_tensors() {
    let text = format!(
        "{}{EQ}\n[2026-11-28 21:04:05] FlashInfer API Call: normalize\n{DASH}\nPositional input arguments:\n  arg[0]:\n    Tensor(\n      shape=(4,)\n      requires_grad=False\n      nan_count=0\n    )\nKeyword input arguments:\n  eps=\n    0.0\nDefault parameters (not explicitly provided):\n  out= [DEFAULT]\n    None\nOutput value:\n  Tensor(\n    shape=(4,)\n    nan_count=4\n    inf_count=0\n  )\n{EQ}\n\n",
        python_sysinfo()
    );
    let s = summarise(&[("p.log", &text)]);
    assert_eq!(s.unparsed, 0);
    let p = s.names["normalize"].first_out.as_ref().unwrap();
    assert_eq!((p.arg.as_str(), p.line), ("result", 8 + 19));
    assert!(s.names["normalize"].first_in.is_none());
}

#[test]
fn raised_is_not_a_crash() {
    let text = format!(
        "{}{}{}{}{}",
        python_sysinfo(),
        inputs("rmsnorm", None),
        inputs("normalize", None),
        outputs("normalize", None, 0),
        inputs("last", None)
    );
    let s = summarise(&[("p.log", &text)]);
    assert_eq!(s.raised.listed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["rmsnorm"]);
    assert_eq!(s.did_not_return.listed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["last"]);
    let out = s.render();
    assert!(out.contains("\nraised: p.log:9 [2026-11-28 21:04:05] rmsnorm\n"), "{out}");
}

#[test]
fn both_loggers_nest() {
    // Python's call, the shim's system information record inside it, the shim's call, its outputs, Python's.
    let text = format!(
        "{}{}{}{}{}{}{}",
        python_sysinfo(),
        inputs("rmsnorm", None),
        sysinfo(42, Some("1 of 2 (local 1)")),
        inputs("norm.rmsnorm", None),
        outputs("norm.rmsnorm", None, 0),
        outputs("rmsnorm", None, 2),
        inputs("crash", None)
    );
    let s = summarise(&[("b.log", &text)]);
    assert_eq!(s.files[0].run_count, 1);
    assert_eq!(s.files[0].runs[0].pid, Some(42));
    let p = s.names["rmsnorm"].first_out.as_ref().unwrap();
    assert_eq!(s.place_text(p), format!("b.log:{} (rank 1 of 2) [2026-11-28 21:04:05] arg[0]", p.line));
    assert_eq!(s.did_not_return.listed[0].0, "crash");
    assert_eq!(s.raised.count, 0);
    assert!(s.render().contains("file b.log: rank 1 of 2, 1 run (pid 42), 7 records\n"));
}

#[test]
fn appended_runs_are_told_apart() {
    // Run 1 crashed in a.f; run 2 (another process) ran b.g. Without runs, a.f would look like a raise.
    let run1 = format!("{}{}{}{}", python_sysinfo(), sysinfo(10, None), inputs("x.f", None), inputs("a.f", None));
    let run2 = format!("{}{}{}{}", python_sysinfo(), sysinfo(11, None), inputs("b.g", None), outputs("b.g", None, 0));
    let s = summarise(&[("app.log", &format!("{run1}{run2}"))]);
    assert_eq!(s.files[0].run_count, 2);
    assert_eq!(s.did_not_return.count, 2, "{:?}", s.did_not_return);
    let out = s.render();
    assert!(out.contains("did not return: app.log:17 (run 1, pid 10) ["), "{out}");
    assert!(out.contains("file app.log: 2 runs (pid 10, pid 11), 8 records\n"), "{out}");
}

#[test]
fn graph_replays_and_watch_lines() {
    let text = format!(
        "{}{EQ}\n[2026-12-02 01:10:06] FlashInfer Graph Replay: norm.rmsnorm (id=7, replay 3)\n{DASH}\nTensor arguments before the call:\n  arg[1]:\n    nan_count=0\nTensor arguments after the call:\n  arg[0] (after):\n    nan_count=5\n{EQ}\n\n[2026-12-02 01:10:09] flashlog watch: 1 calls and 1 graph replays checked, 1 with NaN or Inf\n",
        sysinfo(1, None)
    );
    let s = summarise(&[("g.log", &text)]);
    assert_eq!((s.unparsed, s.other_lines), (0, 0));
    let p = s.names["norm.rmsnorm"].first_out.as_ref().unwrap();
    assert_eq!((p.call.as_str(), p.arg.as_str()), ("graph id=7 replay 3", "arg[0]"));
}

#[test]
fn long_names_are_cut_at_their_end() {
    let long = format!("batch_decode_{}.plan", "x".repeat(100));
    let short = elide_end(&long, 60);
    assert_eq!(short.chars().count(), 60);
    assert!(short.starts_with("batch_decode_xx") && short.ends_with("x..."));
    assert_eq!(elide_end("norm.rmsnorm", 60), "norm.rmsnorm");
}

#[test]
fn kernel_launches_and_other_lines() {
    let text = "program output\n[2026-11-28 21:04:05] FlashInfer Kernel Launch: flashinfer::K<1>(int)\n  grid=(1, 1, 1)\n  block=(1, 1, 1)\n  shared_mem=0\n  stream=0x0\nmore output\n";
    let s = summarise(&[("k.log", text)]);
    assert_eq!(s.names["[kernel] flashinfer::K<1>(int)"].calls, 1);
    assert_eq!(s.other_lines, 2);
    assert_eq!(s.unparsed, 0);
}

#[test]
fn flashinfer_statistics_deferred_to_graph_replay() {
    // FlashInfer's logger inside a capture: the record names an id, its kernel prints the statistics at replay
    // (written by hand after api_logging.py and api_log_stats.cu of FlashInfer 0.7.4: no GPU here to record it).
    let text = format!(
        "{}{EQ}\n[2026-11-28 21:04:05] FlashInfer API Call: rmsnorm\n{DASH}\nPositional input arguments:\n  arg[0]:\n    Tensor(\n      shape=(4,)\n      requires_grad=False\n      [stats deferred to GPU kernel: id=3; look for '[flashinfer stats] id=3 ...' in graph replay output]\n    )\nOutput value:\n  Tensor(\n    shape=(4,)\n    [stats deferred to GPU kernel: id=4; look for '[flashinfer stats] id=4 ...' in graph replay output]\n  )\n{EQ}\n\n[flashinfer stats] id=3 numel=4 min=0.000000 max=1.000000 mean=0.500000 nan=0 inf=0\n[flashinfer stats] id=4 numel=4 (all non-finite) nan=4 inf=0\n",
        python_sysinfo()
    );
    let s = summarise(&[("g.log", &text)]);
    assert!(s.names["rmsnorm"].first_in.is_none());
    let p = s.names["rmsnorm"].first_out.as_ref().unwrap();
    assert_eq!((p.line, p.call.as_str(), p.arg.as_str()), (26, "graph replay", "result"));
    assert_eq!((s.unparsed, s.other_lines), (0, 0));
}

#[test]
fn exit_lines_tell_a_run_that_died() {
    // Two runs of the shim in one file: pid 1 ended (its exit line), pid 2 died in its second call.
    let ended =
        format!("{}{}[flashlog exit: pid 1, 1 record]\n", sysinfo(1, None), call("2026-11-28 21:04:05", "a.f", 0, 0));
    let died = format!(
        "{}[2026-11-28 21:04:06] FlashInfer API Call: b.g\n[2026-11-28 21:04:07] FlashInfer API Call: c.h\n",
        sysinfo(2, Some("1 of 2"))
    );
    let s = summarise(&[("l.log", &format!("{ended}{died}"))]);
    assert_eq!(s.no_exit_line.count, 1);
    let (name, p) = &s.no_exit_line.listed[0];
    assert_eq!((name.as_str(), p.line, p.record), ("c.h", 8 + 20 + 1 + 9 + 2, 8 + 20 + 1 + 9 + 2));
    assert!(s.found_something() && s.other_lines == 0);
    let out = s.render();
    assert!(out.contains("\nthe run ended without its exit line: the last call started was c.h (l.log:40, rank 1 of 2, run 2, pid 2)\n"), "{out}");
    // The exit line of another process does not count, wherever it is.
    let other = format!("{}[flashlog exit: pid 3, 1 record]\n", died);
    assert_eq!(summarise(&[("o.log", &other)]).no_exit_line.count, 1);
    let late = format!("{died}[flashlog exit: pid 2, 2 records]\n");
    assert_eq!(summarise(&[("e.log", &late)]).no_exit_line.count, 0);
    // FlashInfer's Python logger writes no exit line: its runs are never said to have died for want of one.
    let python = format!("{}[2026-11-28 21:04:06] FlashInfer API Call: rmsnorm\n", python_sysinfo());
    assert_eq!(summarise(&[("p.log", &python)]).no_exit_line.count, 0);
}

#[test]
fn nan_counts_per_call_and_records_of_places() {
    let text = format!(
        "{}{}{}{}[flashlog exit: pid 1, 3 records]\n",
        sysinfo(1, None),
        call("2026-11-28 21:04:05", "n.r", 2, 0),
        call("2026-11-28 21:04:06", "n.r", 1, 3),
        call("2026-11-28 21:04:07", "n.r", 0, 0)
    );
    let s = summarise(&[("c.log", &text)]);
    let n = &s.names["n.r"];
    assert_eq!((n.calls, n.nan_in_calls, n.nan_out_calls), (3, 2, 1));
    let first_in = n.first_in.as_ref().unwrap();
    assert_eq!(first_in.record, 9, "the = line of the first call's inputs record");
    let first_out = n.first_out.as_ref().unwrap();
    assert_eq!((first_out.record, first_out.call_record), (8 + 20 + 13, 8 + 20 + 1));
    let shown = s.show(|_| Ok(text.as_bytes())).unwrap();
    let want = text.lines().skip(8).take(19).collect::<Vec<_>>().join("\n");
    assert!(
        shown.starts_with("==> first NaN/Inf overall (input of n.r): c.log:16 [2026-11-28 21:04:05] arg[0] <==\n"),
        "{shown}"
    );
    assert!(shown.ends_with(&format!("{want}\n")), "{shown}");
    assert_eq!(shown.lines().count(), 1 + 19, "the whole call, inputs and outputs, and nothing else: {shown}");
}

#[test]
fn cuda_errors_and_failed_calls() {
    let text = format!(
        "{}{}Call failed: RuntimeError: boom\n[CUDA error after this call: CUDA_ERROR_ILLEGAL_ADDRESS (700)]\n{EQ}\n\n",
        sysinfo(1, None),
        inputs("k.run", None)
    );
    let s = summarise(&[("e.log", &text)]);
    assert_eq!(s.failed.listed[0].0, "k.run: RuntimeError: boom");
    let e = &s.cuda_errors[0];
    assert_eq!((e.error.as_str(), e.file), ("CUDA_ERROR_ILLEGAL_ADDRESS (700)", 0));
    assert!(e.blame.starts_with("after call k.run"), "{e:?}");
    let at = text.lines().position(|l| l.starts_with("[CUDA error")).unwrap() as u64 + 1;
    let call = text.lines().position(|l| l.ends_with("FlashInfer API Call: k.run")).unwrap() as u64;
    assert_eq!((e.line, e.record), (at, call), "the error line, and its call's inputs record from its = line");
    assert!(s.render().contains(&format!("first CUDA error: e.log:{at} CUDA_ERROR_ILLEGAL_ADDRESS (700) after call")));
    assert!(s.found_something() && s.unparsed == 0 && s.other_lines == 0);
    let shown = s.show(|_| Ok(text.as_bytes())).unwrap();
    assert!(
        shown.contains("FlashInfer API Call: k.run\n") && shown.contains("[CUDA error after this call:"),
        "{shown}"
    );
}

#[test]
fn fitted_to_a_width() {
    let long = format!("batch_decode_{}.run", "x".repeat(150));
    let s = summarise(&[("w.log", &format!("{}{}", sysinfo(1, None), call("2026-11-28 21:04:05", &long, 1, 1)))]);
    let lines = s.render_lines(Some(100));
    assert!(lines.iter().all(|(l, _)| l.chars().count() <= 100), "{lines:?}");
    let row = &lines[1].0;
    assert!(row.contains("batch_decode_xxx") && row.contains("...  w.log:"), "{row}");
    assert!(lines.iter().any(|(l, _)| l.starts_with("first NaN/Inf overall: w.log:")));
}

#[test]
fn cuda_error_after_a_launch_record_shows_its_call() {
    // Level 3 of one thread: the after line follows the launch record the call made, before its outputs.
    let launch =
        "[2026-11-28 21:04:05] FlashInfer Kernel Launch: k(float*) [call k.run #1 thread 5]\n  grid=(1, 1, 1)\n";
    let text = format!(
        "{}{}{launch}[CUDA error after this call: CUDA_ERROR_ILLEGAL_ADDRESS (700)]\n{}",
        sysinfo(1, None),
        inputs("k.run", None),
        outputs("k.run", None, 0)
    );
    let s = summarise(&[("l.log", &text)]);
    let call = text.lines().position(|l| l.ends_with("FlashInfer API Call: k.run")).unwrap() as u64;
    assert_eq!(s.cuda_errors[0].record, call, "the call's inputs record, from its = line");
    let shown = s.show(|_| Ok(text.as_bytes())).unwrap();
    assert!(shown.contains("FlashInfer API Call: k.run\n") && shown.contains("Output value:\n"), "{shown}");
    assert!(shown.contains(launch) && shown.contains("\n[CUDA error after this call: "), "{shown}");
    assert!(!shown.contains("records of other threads"), "the launch is the call's own: {shown}");
}

#[test]
fn level1_correlation_lines_and_outputs_after_a_level1_record() {
    // Level 1 with the line (several threads, or FLASHLOG_CORRELATE=1): the line after the call line is its own.
    let level1 = "[2026-11-28 21:04:05] FlashInfer API Call: a.f\n[call a.f #1 thread 7 at 21:04:05.000100]\n\
                  [2026-11-28 21:04:05] FlashInfer API Call: a.f\n[call a.f #2 thread 8 at 21:04:05.000200]\n";
    let s = summarise(&[("l.log", &format!("{}{level1}", sysinfo(1, None)))]);
    assert_eq!((s.names["a.f"].calls, s.unmatched_outputs, s.did_not_return.count), (2, 0, 0));
    // A level-1 record without one (an excluded call at level 3, written before a second thread logged) may be
    // followed by another thread's outputs record of an open call of the same name: that one pairs.
    let text = format!(
        "{}{}[2026-11-28 21:04:05] FlashInfer API Call: a.f\n{}",
        sysinfo(1, None),
        inputs("a.f", Some((1, 8))),
        outputs("a.f", Some((1, 8)), 2)
    );
    let s = summarise(&[("m.log", &text)]);
    assert_eq!((s.unmatched_outputs, s.did_not_return.count), (0, 0));
    assert_eq!(s.names["a.f"].first_out.as_ref().unwrap().call, "thread 8 call #1");
}
