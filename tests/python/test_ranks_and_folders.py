"""Multi-rank runs (issue 13 items 1-3) and destination rules: a missing log folder is created on the first
record, `%r` / `%l` / `%i` / `%%` in destinations, the rank lines of the system information record, a folder
that cannot be created, and an empty destination (stdout)."""

import os
import re
import stat

from conftest import FIXDIR, require, run

HOSTS = FIXDIR / "hosts/hosts"
HOSTOPS = FIXDIR / "hosts/flashinfer/hostops/hostops.so"

LAUNCHERS = {
    "torchrun": lambda rank, local, size: {"RANK": rank, "LOCAL_RANK": local, "WORLD_SIZE": size,
                                           "LOCAL_WORLD_SIZE": 2, "MASTER_ADDR": "127.0.0.1"},
    "openmpi": lambda rank, local, size: {"OMPI_COMM_WORLD_RANK": rank, "OMPI_COMM_WORLD_LOCAL_RANK": local,
                                          "OMPI_COMM_WORLD_SIZE": size},
    "slurm": lambda rank, local, size: {"SLURM_PROCID": rank, "SLURM_LOCALID": local, "SLURM_NTASKS": size},
}


def calls(cwd, dest, env, level="1", n=2):
    plain = run([require(HOSTS), "calls", HOSTOPS, n], preload=False, env=env, cwd=cwd, timeout=30)
    proc = run([HOSTS, "calls", HOSTOPS, n], level=level, dest=dest, env=env, cwd=cwd, timeout=30)
    assert proc.returncode == plain.returncode == 0 and proc.stdout == plain.stdout, proc.stderr
    return proc


def test_two_ranks_of_each_launcher_write_their_own_files(tmp_path):
    for name, variables in LAUNCHERS.items():
        work = tmp_path / name
        work.mkdir()
        for rank, local in ((2, 0), (3, 1)):
            env = {k: str(v) for k, v in variables(rank, local, 8).items()}
            env["CUDA_VISIBLE_DEVICES"] = "2,3"
            proc = calls(work, "new/dir/r_%r_%l.log", env)
            assert proc.stderr == "", proc.stderr
        folder = work / "new/dir"
        assert sorted(p.name for p in folder.iterdir()) == ["r_2_0.log", "r_3_1.log"], name
        # The folders were made with the umask applied (the test runs with the usual 022).
        assert stat.S_IMODE((work / "new").stat().st_mode) == 0o777 & ~current_umask()
        for rank, local in ((2, 0), (3, 1)):
            text = (folder / f"r_{rank}_{local}.log").read_text()
            header = text[: text.index("\n\n")]
            assert re.search(r"\nProcess: \d+ \(hosts\)\nRank: %d of 8 \(local %d\)\nCUDA_VISIBLE_DEVICES: 2,3\n"
                             r"CUDA driver" % (rank, local), header), header
            assert text.count("FlashInfer API Call: hostops.touch") == 2


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_without_launcher_variables_ranks_are_the_pid(tmp_path):
    calls(tmp_path, "logs/r_%r_%l_%i_100%%.log", {})
    (f,) = list((tmp_path / "logs").iterdir())
    m = re.fullmatch(r"r_(\d+)_(\d+)_(\d+)_100%\.log", f.name)
    assert m and m.group(1) == m.group(2) == m.group(3), f.name
    header = f.read_text().split("\n\n")[0]
    assert f"Process: {m.group(1)} (hosts)\nCUDA driver" in header  # nothing invented: no rank lines


def test_partial_launcher_information(tmp_path):
    calls(tmp_path, "a.log", {"PMI_RANK": "5", "PMI_SIZE": "6"})
    assert "\nRank: 5 of 6\n" in (tmp_path / "a.log").read_text()
    calls(tmp_path, "b.log", {"LOCAL_RANK": "1", "CUDA_VISIBLE_DEVICES": ""})
    text = (tmp_path / "b.log").read_text()
    assert "\nLocal rank: 1\nCUDA_VISIBLE_DEVICES: <empty>\n" in text


def test_folder_that_cannot_be_created_is_one_line(tmp_path):
    (tmp_path / "somefile").write_text("")
    dest = tmp_path / "somefile/sub/x.log"  # ENOTDIR, even for root
    proc = calls(tmp_path, dest, {})
    lines = proc.stderr.splitlines()
    assert lines[0] == f"flashlog: cannot open log destination '{dest}': Not a directory (os error 20); nothing is logged by this process (set -o or FLASHLOG_DEST to a file whose folder can be created, or to stderr)"
    assert sum("flashlog:" in l for l in lines) == 1
    assert proc.stderr.count("FlashInfer API Call: hostops.touch") == 0
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        dest = ro / "new/x.log"
        proc = calls(tmp_path, dest, {})
        assert proc.stderr.startswith(f"flashlog: cannot open log destination '{dest}': cannot create folder")


def test_empty_destination_means_stdout(tmp_path):
    proc = run([require(HOSTS), "calls", HOSTOPS, 1], level="1", dest="", cwd=tmp_path, timeout=30)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "FlashInfer API Call: hostops.touch" in proc.stdout and proc.stdout.endswith("calls=1 failed=0\n")
    assert list(tmp_path.iterdir()) == []
