"""Training speed: the input pipeline alone vs the models' training rate, and CPU tuning options.

Prints (every figure measured in this run; ratios are against the fp32 default of the same run, so
that they hold on a noisy shared machine):

1. input pipeline images/s (Parquet row groups -> PNG decode -> resize -> batches), at 64 px
   (small_cnn) and 128 px (vgg), for both decoders (OpenCV threads, tf.io.decode_png map), with
   nothing consuming but the iterator;
2. training images/s from in-memory batches (the model alone) for small_cnn (batch 64 and 256), vgg
   at a CPU width and at the paper's width (1.0, a few steps), each in its own process, with peak RSS;
   every figure also as CPU microseconds per image (process CPU time), which other processes on a
   shared machine disturb much less than wall-clock rates;
3. CPU options, as ratios vs the default: thread pools, XLA ``jit_compile``, oneDNN off
   (``TF_ENABLE_ONEDNN_OPTS=0``), ``mixed_bfloat16``, ``channels_first``, op determinism off;
4. end-to-end small_cnn training fed by the stream, by its ``cache=True`` form (what the train stage
   uses) and by in-memory batches, and the pipeline / training ratio (target >= 10);
5. the models as params.yaml's default runs train them (small_cnn, crnn, vgg: width, input size, batch,
   rhythm branch), training images/s, peak RSS, and the input pipeline's rate against each.

Run: ``.venv/bin/python benchmarks/bench_train.py [--images datasets/images/annotations] [--quick]``.
Without ``--images`` it renders synthetic ECG-like beat images (anti-aliased traces, PNG ~1-2 KB, as
the render stage writes them) into a temporary shard directory.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def synthetic_shards(root: Path, n_beats: int, size: int = 128, row_group_rows: int = 4096) -> Path:
    """Shards of about ``n_beats`` originals over 20 records (70 % N, the rest V, A, L, R, F), with RR and
    template columns, written by the test suite's shard writer (:func:`tests._shards.write_shards`, which
    lays them out through :mod:`pipelines.formats` as the render stage does)."""
    from tests._shards import write_shards

    mix = {"N": 0.7, "V": 0.1, "A": 0.05, "L": 0.06, "R": 0.06, "F": 0.03}
    per_record = max(n_beats // 20, 1)
    counts = {sym: max(int(round(per_record * share)), 1) for sym, share in mix.items()}
    records = {str(100 + i): counts for i in range(20)}
    return write_shards(root, records, size=size, n_shards=2, row_group_rows=row_group_rows, rr=True)


def _cpu_s() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def bench_pipeline(images_dir: Path, input_size: int, batch: int, decoder: str, epochs: int = 1,
                   limit: int = 0) -> dict:
    """Images/s (wall) and CPU microseconds per image of the shuffled training stream alone."""
    import numpy as np

    from training.data import Selection, class_weights, make_dataset
    from training.meta import label_rows, open_images

    images = open_images(images_dir, verify=False)
    y, classes, _ = label_rows(images.rows, "aami")
    rows = np.flatnonzero((images.rows["crop"].to_numpy() == 0) & (y >= 0))
    if limit:
        rows = rows[:limit]
    sel = Selection.of(rows, np.zeros(rows.size, np.int8), y[rows])
    ds = make_dataset(images, sel, input_size=input_size, batch_size=batch, shuffle=True, seed=0,
                      shuffle_buffer=8192, weights=class_weights(sel.y, len(classes), "balanced"), decoder=decoder)
    for _ in ds.take(2):
        pass
    t0, c0, n = time.perf_counter(), _cpu_s(), 0
    for _ in range(epochs):
        for x, _, _ in ds:
            n += int(x.shape[0])
    dt = time.perf_counter() - t0
    return {"images": n, "seconds": dt, "images_per_s": n / dt, "cpu_us": 1e6 * (_cpu_s() - c0) / n}


def worker(cfg: dict) -> dict:
    """One training-speed measurement (run in a fresh process: env vars and thread pools)."""
    import resource

    import numpy as np
    import tensorflow as tf

    from training.models import build_model, compile_model
    from training.runtime import configure

    configure(0, intra_op_threads=cfg.get("intra", 0), inter_op_threads=cfg.get("inter", 0),
              deterministic=cfg.get("deterministic", True))
    size, batch = cfg["input_size"], cfg["batch"]
    fmt = cfg.get("data_format", "channels_last")
    n_rhythm, timed = cfg.get("rhythm", 0), tuple(cfg.get("timed", ()))
    model = build_model(cfg["model"], 5, input_size=size, width=cfg.get("width", 1.0),
                        dtype=cfg.get("dtype", "float32"), data_format=fmt, rhythm_features=n_rhythm, timed=timed)
    compile_model(model, learning_rate=1e-3, dtype=cfg.get("dtype", "float32"), jit_compile=cfg.get("jit", False))
    rng = np.random.default_rng(0)
    n_batches = 4
    x = rng.random((n_batches * batch, size, size, 1), dtype=np.float32)
    y = rng.integers(0, 5, n_batches * batch).astype(np.int32)
    if fmt == "channels_first":
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    inputs = (x, rng.random((len(x), n_rhythm), dtype=np.float32)) if n_rhythm else x
    ds = tf.data.Dataset.from_tensor_slices((inputs, y)).batch(batch).cache().repeat()
    warm, steps = cfg.get("warmup", 3), cfg["steps"]
    model.fit(ds, steps_per_epoch=warm, epochs=1, verbose=0)
    t0, c0 = time.perf_counter(), _cpu_s()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    dt = time.perf_counter() - t0
    return {"images_per_s": steps * batch / dt, "seconds": dt, "params": model.count_params(),
            "cpu_us": 1e6 * (_cpu_s() - c0) / (steps * batch),
            "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "jit": str(model.jit_compile)}


def run_worker(cfg: dict, env: dict | None = None, timeout: int = 900) -> dict:
    e = dict(os.environ)
    e.update(env or {})
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(cfg)], capture_output=True, text=True,
                          env=e, timeout=timeout)
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)
    return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}


def bench_end_to_end(images_dir: Path, batch: int, feed: str, limit: int = 0, epochs: int = 2,
                     input_size: int = 32) -> dict:
    """small_cnn (with the rhythm branch of the default runs) trained from one feed, in this process alone.

    Feeds: ``memory`` (the batches held as tensors, ``from_tensor_slices``), ``stream`` (``make_dataset``:
    Parquet -> PNG decode -> a Python generator) and ``cached`` (``make_dataset(cache=True)``: decoded once,
    batches gathered in TensorFlow, what the train stage uses). One feed a process: a generator's
    tf.data pipeline, once iterated, slows every later fit in its process, so feeds are not alternated.
    """
    import numpy as np
    import tensorflow as tf

    from training.data import Selection, class_weights, make_dataset
    from training.meta import label_rows, open_images
    from training.models import build_model, compile_model
    from training.runtime import configure

    configure(0)
    images = open_images(images_dir, verify=False)
    y, classes, _ = label_rows(images.rows, "aami")
    rows = np.flatnonzero((images.rows["crop"].to_numpy() == 0) & (y >= 0))
    rows = rows[:limit or 10000]
    sel = Selection.of(rows, np.zeros(rows.size, np.int8), y[rows])
    # the default runs' input: an image and the rhythm branch's 14 RR + template features (values random here)
    feats = np.random.default_rng(0).normal(size=(len(sel), 14)).astype(np.float32)
    kw = dict(input_size=input_size, batch_size=batch, shuffle=True, seed=0, shuffle_buffer=8192,
              weights=class_weights(sel.y, len(classes), "balanced"), features=feats)
    t0 = time.perf_counter()
    if feed == "stream":
        ds = make_dataset(images, sel, **kw)
    else:
        ds = make_dataset(images, sel, cache=True, **kw)
        if feed == "memory":
            x, f, yy, w = (np.concatenate(a) for a in zip(*[(b[0]["image"].numpy(), b[0]["rhythm"].numpy(),
                                                              b[1].numpy(), b[2].numpy()) for b in ds]))
            ds = (tf.data.Dataset.from_tensor_slices(({"image": x, "rhythm": f}, yy, w)).shuffle(8192, seed=0)
                  .batch(batch).prefetch(2))
    setup_s = time.perf_counter() - t0
    model = compile_model(build_model("small_cnn", len(classes), input_size=input_size, width=0.5,
                                      rhythm_features=14, timed=(1,), timed_features=3),
                          learning_rate=1e-3, jit_compile=False)
    model.fit(ds.take(3), epochs=1, verbose=0)                      # trace outside the timing
    t0, c0 = time.perf_counter(), _cpu_s()
    model.fit(ds, epochs=epochs, verbose=0)
    dt = time.perf_counter() - t0
    n = epochs * len(sel)
    return {"images_per_s": n / dt, "cpu_us": 1e6 * (_cpu_s() - c0) / n, "setup_s": setup_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=Path, help="an image-shard directory (default: synthetic shards)")
    ap.add_argument("--beats", type=int, default=12000, help="synthetic beats (default 12000)")
    ap.add_argument("--quick", action="store_true", help="fewer steps and configurations")
    ap.add_argument("--limit", type=int, default=30000, help="beats streamed per pipeline measurement (0: all)")
    ap.add_argument("--sections", default="1,2,4,5",
                    help="sections to run (default 1,2,4,5; 2 is sections 2-3; the ratio tables need 1)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        cfg = json.loads(args.worker)
        print(json.dumps(bench_end_to_end(Path(cfg["images"]), cfg["batch"], cfg["feed"], limit=cfg["limit"])
                         if "feed" in cfg else worker(cfg)))
        return
    import platform

    import psutil

    print(f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GB RAM; python {platform.python_version()}")
    tmp = None
    if args.images is None:
        tmp = tempfile.TemporaryDirectory()
        t0 = time.perf_counter()
        images_dir = synthetic_shards(Path(tmp.name) / "images", args.beats)
        print(f"synthetic shards: {args.beats} beats, 128x128 PNG, made in {time.perf_counter() - t0:.1f} s")
    else:
        images_dir = args.images

    sections = set(args.sections.split(","))
    pipe: dict = {}
    results: dict[str, list[dict]] = {}
    if "1" in sections:
        section_pipeline(images_dir, args, pipe)
    if "2" in sections:
        section_training(args, results)
    if "4" in sections:
        section_ratios(images_dir, args, pipe, results)
    if "5" in sections:
        section_default_models(images_dir, args, pipe)
    if tmp is not None:
        tmp.cleanup()


def section_pipeline(images_dir: Path, args, pipe: dict) -> None:
    print("\n## 1. input pipeline alone (shuffled training stream, batches of 256, class weights on;"
          " decoders alternated, mean of 2 rounds)")
    print("| decoder | input | images/s | CPU us/image |")
    print("|---|---:|---:|---:|")
    for size in (64, 128):
        runs: dict[str, list[dict]] = {"cv2": [], "tf": []}
        for _ in range(2):
            for decoder in ("cv2", "tf"):
                runs[decoder].append(bench_pipeline(images_dir, size, 256, decoder, limit=args.limit))
        for decoder, rs in runs.items():
            r = {k: sum(x[k] for x in rs) / len(rs) for k in ("images_per_s", "cpu_us")}
            pipe[decoder, size] = r
            print(f"| {decoder} | {size}x{size} | {r['images_per_s']:,.0f} | {r['cpu_us']:,.0f} |", flush=True)


def section_training(args, results: dict) -> None:
    q = args.quick
    base_small = {"model": "small_cnn", "input_size": 64, "batch": 256, "steps": 6 if q else 12}
    base_vgg = {"model": "vgg", "input_size": 128, "width": 0.25, "batch": 64, "steps": 4 if q else 8}
    # (name, config, env, baseline): each row runs right after its own baseline run (a pair), so that
    # both see the same machine load; ratios are variant / baseline of the pair.
    rows = [
        ("small_cnn b64 fp32", {**base_small, "batch": 64, "steps": base_small["steps"] * 3}, None, "small"),
        ("small_cnn b256 jit_compile (op determinism off)", {**base_small, "jit": True, "deterministic": False}, None, "small"),
        ("small_cnn b256 op determinism off", {**base_small, "deterministic": False}, None, "small"),
        ("small_cnn b256 intra=2 inter=1", {**base_small, "intra": 2, "inter": 1}, None, "small"),
        ("small_cnn b256 intra=1 inter=1", {**base_small, "intra": 1, "inter": 1}, None, "small"),
        ("small_cnn b256 oneDNN off", base_small, {"TF_ENABLE_ONEDNN_OPTS": "0"}, "small"),
        ("small_cnn b256 mixed_bfloat16", {**base_small, "dtype": "mixed_bfloat16"}, None, "small"),
        ("small_cnn b256 channels_first", {**base_small, "data_format": "channels_first"}, None, "small"),
        ("vgg w0.25 128px b64 jit_compile (op determinism off)", {**base_vgg, "jit": True, "deterministic": False}, None, "vgg"),
        ("vgg w0.25 128px b64 oneDNN off", base_vgg, {"TF_ENABLE_ONEDNN_OPTS": "0"}, "vgg"),
        ("vgg w0.25 128px b64 mixed_bfloat16", {**base_vgg, "dtype": "mixed_bfloat16"}, None, "vgg"),
        ("vgg w0.25 128px b64 intra=2 inter=1", {**base_vgg, "intra": 2, "inter": 1}, None, "vgg"),
        ("vgg w0.125 64px b64 fp32 (quick profile)", {**base_vgg, "width": 0.125, "input_size": 64, "steps": 20}, None, None),
        ("vgg w1.0 128px b64 fp32 (paper)", {**base_vgg, "width": 1.0, "steps": 2 if q else 3, "warmup": 1}, None, None),
    ]
    if q:
        rows = [r for r in rows if r[0] not in ("small_cnn b256 intra=1 inter=1", "small_cnn b256 op determinism off")]
    bases = {"small": ("small_cnn b256 fp32 (default)", base_small), "vgg": ("vgg w0.25 128px b64 fp32 (default)", base_vgg)}
    print("\n## 2-3. training images/s, model alone (in-memory batches), one process per measurement")
    print("| configuration | images/s | baseline of the pair, images/s | ratio, wall | ratio, CPU time | "
          "CPU us/image | peak RSS GB | params |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")

    def show(name, r, base=None):
        if "error" in r:
            print(f"| {name} | failed: {r['error']} | | | | | | |", flush=True)
            return
        pair = ("", "", "") if base is None or "error" in base else (
            f"{base['images_per_s']:,.1f}", f"{r['images_per_s'] / base['images_per_s']:.2f}x",
            f"{base['cpu_us'] / r['cpu_us']:.2f}x")
        print(f"| {name} | {r['images_per_s']:,.1f} | {pair[0]} | {pair[1]} | {pair[2]} | {r['cpu_us']:,.0f} | "
              f"{r['rss_gb']:.1f} | {r['params'] / 1e6:.1f} M |", flush=True)

    for name, cfg, env, base_key in rows:
        base = None
        if base_key:
            base_name, base_cfg = bases[base_key]
            base = run_worker(base_cfg)
            results.setdefault(base_name, []).append(base)
        r = run_worker(cfg, env)
        results.setdefault(name, []).append(r)
        show(name, r, base)
    for base_name, _ in bases.values():
        ok = [r for r in results.get(base_name, []) if "error" not in r]
        if ok:
            med = sorted(ok, key=lambda r: r["images_per_s"])[len(ok) // 2]
            results[base_name] = [med]
            print(f"| {base_name}: median of its {len(ok)} runs | {med['images_per_s']:,.1f} | | 1.00x | 1.00x | "
                  f"{med['cpu_us']:,.0f} | {med['rss_gb']:.1f} | {med['params'] / 1e6:.1f} M |", flush=True)



def section_ratios(images_dir: Path, args, pipe: dict, results: dict) -> None:
    print("\n## 4. end-to-end, and pipeline / training ratios (target >= 10)")
    n = min(args.limit, 10000) if args.limit else 10000
    runs: dict[str, list[dict]] = {"memory": [], "stream": [], "cached": []}
    for _ in range(2):
        for feed in runs:
            r = run_worker({"images": str(images_dir), "batch": 128, "feed": feed, "limit": n})
            if "error" in r:
                print(f"{feed}: {r['error']}")
                return
            runs[feed].append(r)
    m, st, ca = ({k: sum(r[k] for r in rs) / len(rs) for k in ("images_per_s", "cpu_us", "setup_s")}
                 for rs in runs.values())
    print(f"small_cnn width 0.5, 32 px + rhythm branch (14 features), batch 128, {n:,} images x 2 epochs, one "
          f"process a feed, feeds alternated, mean of 2 processes each: from memory {m['images_per_s']:,.0f} "
          f"images/s ({m['cpu_us']:,.0f} CPU us/image); from the stream {st['images_per_s']:,.0f} images/s "
          f"({st['cpu_us']:,.0f} CPU us/image), stream/memory = {st['images_per_s'] / m['images_per_s']:.2f}x; "
          f"from the stream's cache=True form (decoded once in {ca['setup_s']:.1f} s) {ca['images_per_s']:,.0f} "
          f"images/s ({ca['cpu_us']:,.0f} CPU us/image), cached/memory = "
          f"{ca['images_per_s'] / m['images_per_s']:.2f}x, cached/stream = "
          f"{ca['images_per_s'] / st['images_per_s']:.2f}x")
    if not pipe or not results:
        return
    print("Ratio, wall: pipeline images/s over training images/s, each measured alone. Ratio, CPU time: "
          "training CPU time per image over pipeline CPU time per image (less disturbed by other load).")
    print("| model | decoder | pipeline images/s | training images/s | ratio, wall | ratio, CPU time |")
    print("|---|---|---:|---:|---:|---:|")
    for name, size in (("small_cnn b64 fp32", 64), ("small_cnn b256 fp32 (default)", 64),
                       ("vgg w0.25 128px b64 fp32 (default)", 128), ("vgg w1.0 128px b64 fp32 (paper)", 128)):
        r = results[name][0]
        if "error" in r:
            continue
        for decoder in ("cv2", "tf"):
            p = pipe[decoder, size]
            print(f"| {name} | {decoder} | {p['images_per_s']:,.0f} | {r['images_per_s']:,.1f} | "
                  f"{p['images_per_s'] / r['images_per_s']:.1f}x | {r['cpu_us'] / p['cpu_us']:.1f}x |")


def section_default_models(images_dir: Path, args, pipe: dict) -> None:
    """Each model as the default runs of params.yaml train it (width, input size, batch, rhythm branch)."""
    from pipelines import load_params

    train = load_params(ROOT / "params.yaml")["train"]
    n_rhythm = len(train["rhythm_features"])
    print("\n## 5. the default runs' models (params.yaml), model alone, and the input pipeline against it")
    print("| model | input | width | batch | rhythm branch | params | training images/s | CPU us/image | "
          "peak RSS GB | pipeline images/s (cv2) | ratio, wall | ratio, CPU time |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("small_cnn", "crnn", "vgg"):
        m = train[name]
        runs = [r for r in train["runs"].values() if r["model"] == name]
        rhythm = any(r.get("rhythm") for r in runs)
        timed = next((r.get("timed_classes") for r in runs if r.get("timed_classes")), None)
        cfg = {"model": name, "input_size": m["input_size"], "width": m["width"], "batch": m["batch_size"],
               "steps": 4 if args.quick else 10, "rhythm": n_rhythm if rhythm else 0, "timed": [1] if timed else []}
        r = run_worker(cfg)
        if "error" in r:
            print(f"| {name} | failed: {r['error']} |" + " |" * 10, flush=True)
            continue
        size = m["input_size"]
        if ("cv2", size) not in pipe:
            pipe["cv2", size] = bench_pipeline(images_dir, size, 256, "cv2", limit=args.limit)
        p = pipe["cv2", size]
        branch = ("yes (timed S)" if timed else "yes") if rhythm else "no"
        print(f"| {name} | {size} px | {m['width']} | {m['batch_size']} | {branch} "
              f"| {r['params']:,} | {r['images_per_s']:,.1f} | {r['cpu_us']:,.0f} | {r['rss_gb']:.2f} | "
              f"{p['images_per_s']:,.0f} | {p['images_per_s'] / r['images_per_s']:.1f}x | "
              f"{r['cpu_us'] / p['cpu_us']:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
