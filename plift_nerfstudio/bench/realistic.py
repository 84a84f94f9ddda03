"""The realistic-room benchmark (``scripts/benchmark_quality.py --realistic``): labels vs ours on the shipped
Blender-rendered rooms under data/realistic/, with the diagnostics that tell geometry from segmentation failures.

Per scene it trains the CPU preset, scores the test views (every protocol; the targets are checked under
panopticapi's, where void predictions count), scores them again during training (quality against training time),
and computes the diagnostics of ``plift_nerfstudio/evaluation/diagnostics.py``: train vs test PSNR, depth error, fog share,
per-class PQ and IoU, and the label majority (every true object given the class the training labels vote for, weighed
as the semantic loss weighs them: what the labels' consensus allows).
"""

from __future__ import annotations

import ast
import json
import shutil
from functools import partial
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rich.console import Console

from plift_nerfstudio.evaluation.diagnostics import (Diagnostics, diagnose, outcome_counts, per_class_markdown,
                                                    per_object_markdown)
from plift_nerfstudio.evaluation.eval_views import evaluate_pipeline, flat_metrics
from plift_nerfstudio.evaluation.metrics import PROTOCOLS
from plift_nerfstudio.bench.harness import run_config, train_and_evaluate
from plift_nerfstudio.labels.class_table import ClassTable
from plift_nerfstudio.method_config import panoptic_lifting_cpu, panoptic_lifting_lite, panoptic_lifting_quick
from plift_nerfstudio.core.runs import load_trained_pipeline
from plift_nerfstudio.core.report import fmt

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "realistic"
"""The shipped rooms (data/realistic/ of the source checkout)."""
PRESETS = {"panoptic-lifting-cpu": panoptic_lifting_cpu, "panoptic-lifting-lite": panoptic_lifting_lite,
           "panoptic-lifting-quick": panoptic_lifting_quick}
# what issue 14 asks of the CPU preset on every shipped scene, panopticapi protocol
TARGET_MARGIN = 10.0
TARGET_PSNR = 28.0
TARGET_MINUTES = 30.0
DEFAULT_SEED = 42  # nerfstudio's MachineConfig default


@dataclass
class RealisticOptions:
    scenes: Tuple[str, ...] = ()
    """Rooms to run (folder names under ``root``; default: all)."""
    root: Path = SHIPPED
    """Folder whose sub-folders (each with a transforms.json) are the rooms: the shipped data/realistic/ by default, or
    rooms made with plift-realistic-scene and plift-sparse-depth that no setting was tuned on."""
    preset: str = "panoptic-lifting-cpu"
    steps: Optional[int] = None
    progress_points: int = 5
    quick: bool = False
    training_seeds: Tuple[int, ...] = (DEFAULT_SEED,)
    """Training seeds: each room is trained once per seed (the spread says how far one run can be trusted)."""
    label_forms: Tuple[str, ...] = ("distributions",)
    """'distributions' (the room's own labels) and/or 'coco' (its COCO panoptic variant imported into a copy)."""
    model_settings: Dict[str, Any] = field(default_factory=dict)
    """Model options set on top of the preset (a lever measured against the preset: ``parse_model_settings``)."""


@dataclass
class SceneResult:
    scene: str
    ours: Dict[str, Optional[float]]
    labels: Dict[str, Optional[float]]
    train_minutes: float
    diagnostics: dict
    progress: List[dict] = field(default_factory=list)
    config: str = ""
    min_segment_share: float = 0.0
    """The run's min_segment_share: rendered segments under this share of the image are merged into neighbours."""
    unmerged: Dict[str, Optional[float]] = field(default_factory=dict)
    """Ours scored again with every rendered segment kept (min_segment_share 0): what the merging changes."""
    seed: int = DEFAULT_SEED
    """The training seed."""
    label: str = ""
    """The row's name in the tables: the scene, with the seed when a benchmark ran several."""
    off_walk: Dict[str, Optional[float]] = field(default_factory=dict)
    """Ours (``<protocol>_<metric>``, ``psnr``) and the labels (``labels_...``, ``labels_merged_...``) on the room's
    views off the walk (off_walk.json), when it has them."""

    def __post_init__(self) -> None:
        self.label = self.label or self.scene

    def meets_targets(self) -> Dict[str, bool]:
        o, lab = self.ours, level_labels(self, "panopticapi")  # on a level: the labels merged as our renders are
        return {
            "PQ +10": o["panopticapi_pq"] >= lab["pq"] + TARGET_MARGIN,
            "mIoU +10": o["panopticapi_miou"] >= lab["miou"] + TARGET_MARGIN,
            "PQscene > labels PQ": o["panopticapi_scene_pq"] > lab["pq"],
            "PSNR >= 28": o["psnr"] >= TARGET_PSNR,
            "<= 30 min": self.train_minutes <= TARGET_MINUTES,
        }


def parse_model_settings(pairs: Sequence[str], preset: str) -> Dict[str, Any]:
    """``name=value`` pairs (``position_frequencies=4``) as model options of ``preset``, each value converted to the
    type of the preset's own value; an unknown name or a value of the wrong type stops with a message naming it."""
    model = PRESETS[preset].config.pipeline.model
    settings: Dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not hasattr(model, name):
            raise SystemExit(f"--model-settings {pair!r}: expected name=value with a model option of {preset} "
                             f"(e.g. position_frequencies=4)")
        current = getattr(model, name)
        try:
            if isinstance(current, bool):
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                value: Any = text.lower() == "true"
            elif isinstance(current, (int, float, str)):
                value = type(current)(text)
            else:
                value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise SystemExit(f"--model-settings {pair!r}: {text!r} is not of type {type(current).__name__} "
                             f"(the preset's {name} is {current!r})") from None
        settings[name] = value
    return settings


def settings_text(settings: Dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items())


def rooms_under(root: Path, names: Tuple[str, ...] = ()) -> List[Path]:
    """The rooms under ``root`` (its sub-folders with a transforms.json), sorted by name; only ``names`` if given."""
    found = sorted(p.parent for p in Path(root).glob("*/transforms.json"))
    if names:
        by_name = {p.name: p for p in found}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise SystemExit(f"no realistic room {missing} under {root}; there are {sorted(by_name)}")
        found = [by_name[n] for n in names]
    if not found:
        raise SystemExit(f"no realistic rooms under {root} (each a folder with transforms.json; plift-realistic-scene "
                         "makes them)")
    return found


COPY_MARKER = ".plift-benchmark-copy"


def coco_labelled_copy(room: Path, rooms_dir: Path, console: Console) -> Path:
    """A copy of ``room`` (``rooms_dir/<room>-coco``) whose machine labels are its COCO panoptic variant
    (``coco_panoptic/predictions.json``: one class and score per segment), imported as a user would import another
    segmenter's output (plift-import-labels)."""
    from plift_nerfstudio.labels.coco_import import import_coco_panoptic
    from plift_nerfstudio.scenes.dataset_writer import COCO_PANOPTIC_JSON

    predictions = room / COCO_PANOPTIC_JSON
    if not predictions.is_file():
        raise SystemExit(f"{room} has no COCO panoptic variant ({COCO_PANOPTIC_JSON}); remake it with "
                         "plift-realistic-scene (--reuse-renders keeps its renders)")
    copy = rooms_dir / f"{room.name}-coco"
    marker = copy / COPY_MARKER
    if copy.exists():
        if not marker.is_file():
            raise SystemExit(f"{copy} exists and is not a copy this benchmark made (no {COPY_MARKER}); move it away")
        shutil.rmtree(copy)
    shutil.copytree(room, copy)
    marker.write_text(f"working copy of {room} made by the realistic benchmark; it is replaced on the next run\n")
    report = import_coco_panoptic(copy, copy / COCO_PANOPTIC_JSON, None, "scannet21", overwrite=True)
    console.print(f"{room.name}: COCO panoptic labels imported into {copy} ({len(report.imported)} frames)")
    return copy


def off_walk_metrics(pipeline, data: Path) -> Dict[str, Optional[float]]:
    """Ours and the labels scored on the room's views off the walk (off_walk.json), flat as flat_metrics gives them;
    empty when the room has none."""
    from plift_nerfstudio.evaluation.eval_views import evaluate_extra_views
    from plift_nerfstudio.scenes.realistic.dataset import OFF_WALK_FILE

    path = data / OFF_WALK_FILE
    if not path.is_file():
        return {}
    return flat_metrics(evaluate_extra_views(pipeline, data, json.loads(path.read_text())["frames"]))


def off_walk_table(rows: List[SceneResult], protocol: str = "panopticapi") -> List[str]:
    """Interpolated test views beside the views off the walk: the labels (merged as our renders are) and ours."""
    lines = ["| scene | views | labels merged PQ / mIoU | ours PQscene / PQ / mIoU | ours PSNR | ΔPQ | ΔmIoU |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        off_walk_labels = {k[len("labels_"):]: v for k, v in r.off_walk.items() if k.startswith("labels_")}
        sets = [("test (interpolated)", r.ours, r.labels)] + ([("off the walk", r.off_walk, off_walk_labels)]
                                                              if r.off_walk else [])
        for name, ours, labels in sets:
            lab = {k: labels.get(f"merged_{protocol}_{k}", labels.get(f"{protocol}_{k}")) for k in ("pq", "miou")}
            o = {k: ours.get(f"{protocol}_{k}") for k in ("scene_pq", "pq", "miou")}
            delta = ["n/a" if o[k] is None or lab[k] is None else f"{o[k] - lab[k]:+.1f}" for k in ("pq", "miou")]
            lines.append(f"| {r.label} | {name} | {fmt1(lab['pq'])} / {fmt1(lab['miou'])} | {fmt1(o['scene_pq'])} / "
                         f"{fmt1(o['pq'])} / {fmt1(o['miou'])} | {fmt1(ours.get('psnr'))} | {delta[0]} | {delta[1]} |")
    return lines


def run_scene(opts: RealisticOptions, data: Path, output_dir: Path, console: Console, seed: int = DEFAULT_SEED) -> SceneResult:
    preset = PRESETS[opts.preset].config
    steps = opts.steps or preset.max_num_iterations
    rays = (512, 256) if opts.quick else None
    label = data.name if len(opts.training_seeds) == 1 else f"{data.name} seed {seed}"
    name = f"realistic-{data.name}" + ("" if seed == DEFAULT_SEED else f"-seed{seed}")
    config = run_config(preset, data, output_dir / "runs", name, steps=opts.steps, rays_per_batch=rays, seed=seed,
                        model_overrides=opts.model_settings)
    config.logging.local_writer.enable = False
    marks = [round(steps * (k + 1) / opts.progress_points) for k in range(opts.progress_points - 1)]
    console.print(f"[bold]training[/] {opts.preset} on {data.name}, seed {seed} ({steps} steps; scoring at steps {marks})")
    result = train_and_evaluate(config, progress_steps=marks)
    flat = flat_metrics(result.evaluation)
    ours = {k: v for k, v in flat.items() if not k.startswith("labels_")}
    labels = {k[len("labels_"):]: v for k, v in flat.items() if k.startswith("labels_")}
    _, pipeline, _, _ = load_trained_pipeline(result.config_path, test_mode="test")
    table = ClassTable.load(data / "labels" / "classes.json")
    diag = diagnose(pipeline, data, table, picture_path=output_dir / f"losses_{label.replace(' ', '_')}.png")
    share = pipeline.model.config.min_segment_share
    pipeline.model.config.min_segment_share = 0.0
    unmerged = {k: v for k, v in flat_metrics(evaluate_pipeline(pipeline, keep_renders=0)).items() if not k.startswith("labels_")}
    progress = [{"step": p.step, "minutes": p.train_seconds / 60, "scene_pq": p.metrics["panopticapi_scene_pq"],
                 "pq": p.metrics["panopticapi_pq"], "miou": p.metrics["panopticapi_miou"], "psnr": p.metrics["psnr"]}
                for p in result.progress]
    progress.append({"step": steps, "minutes": result.train_seconds / 60, "scene_pq": ours["panopticapi_scene_pq"],
                     "pq": ours["panopticapi_pq"], "miou": ours["panopticapi_miou"], "psnr": ours["psnr"]})
    pipeline.model.config.min_segment_share = share
    off_walk = off_walk_metrics(pipeline, data)
    row = SceneResult(data.name, ours, labels, result.train_seconds / 60, asdict(diag), progress, str(result.config_path),
                      share, unmerged, seed, label, off_walk)
    console.print(f"  {label}: ours PQscene {ours['panopticapi_scene_pq']:.1f} PQ {ours['panopticapi_pq']:.1f} "
                  f"mIoU {ours['panopticapi_miou']:.1f} PSNR {ours['psnr']:.1f}; labels PQ {labels['panopticapi_pq']:.1f} "
                  f"mIoU {labels['panopticapi_miou']:.1f} (merged as ours: {fmt1(labels.get('merged_panopticapi_pq'))} / "
                  f"{fmt1(labels.get('merged_panopticapi_miou'))}); {row.train_minutes:.1f} min")
    return row


fmt1 = partial(fmt, digits=1)
"""Scores with one decimal, as the realistic tables show them."""


def main_table(rows: List[SceneResult], protocol: str) -> List[str]:
    """Labels and ours on a level: both with the small-segment merge our renders get (Δ), and both as they are
    (Δ raw: ours with every rendered segment kept against the labels as they are)."""
    lines = ["| scene | labels PQ / mIoU | labels merged PQ / mIoU | ours PQscene | ours PQ | ours mIoU | ours PSNR | "
             "train min | ΔPQ | ΔmIoU | ΔPQ raw | ΔmIoU raw |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o, lab, u = r.ours, r.labels, r.unmerged
        level = level_labels(r, protocol)
        raw = [u.get(f"{protocol}_{k}") for k in ("pq", "miou")]
        lines.append(
            f"| {r.label} | {fmt1(lab[f'{protocol}_pq'])} / {fmt1(lab[f'{protocol}_miou'])} | "
            f"{fmt1(lab.get(f'merged_{protocol}_pq'))} / {fmt1(lab.get(f'merged_{protocol}_miou'))} | "
            f"{fmt1(o[f'{protocol}_scene_pq'])} | {fmt1(o[f'{protocol}_pq'])} | {fmt1(o[f'{protocol}_miou'])} | "
            f"{fmt1(o['psnr'])} | {r.train_minutes:.1f} | {o[f'{protocol}_pq'] - level['pq']:+.1f} | "
            f"{o[f'{protocol}_miou'] - level['miou']:+.1f} | "
            + " | ".join("n/a" if v is None else f"{v - lab[f'{protocol}_{k}']:+.1f}" for v, k in zip(raw, ("pq", "miou")))
            + " |")
    return lines


def level_labels(row: SceneResult, protocol: str) -> Dict[str, float]:
    """The labels' PQ and mIoU to compare ours with: merged as our renders are when the run merges, else as they are."""
    return {k: row.labels.get(f"merged_{protocol}_{k}", row.labels[f"{protocol}_{k}"]) for k in ("pq", "miou")}


def targets_table(rows: List[SceneResult]) -> List[str]:
    names = list(rows[0].meets_targets()) if rows else []
    lines = ["| scene | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for r in rows:
        lines.append(f"| {r.label} | " + " | ".join("yes" if ok else "**no**" for ok in r.meets_targets().values()) + " |")
    return lines


def diagnostics_table(rows: List[SceneResult]) -> List[str]:
    lines = ["| scene | train PSNR | test PSNR | depth median error cm | depth abs rel | fog share % | "
             "label majority PQscene / PQ / mIoU | ours PQscene / PQ / mIoU |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        d, o = r.diagnostics, r.ours
        m = d.get("label_majority") or {}
        lines.append(f"| {r.label} | {d['train_psnr']:.1f} | {d['test_psnr']:.1f} | {100 * d['depth_median_abs_error_m']:.1f} | "
                     f"{d['depth_abs_rel']:.3f} | {100 * d['fog_share']:.1f} | "
                     f"{fmt1(m.get('scene_pq'))} / {fmt1(m.get('pq'))} / {fmt1(m.get('miou'))} | "
                     f"{fmt1(o['panopticapi_scene_pq'])} / {fmt1(o['panopticapi_pq'])} / {fmt1(o['panopticapi_miou'])} |")
    return lines


def merging_table(rows: List[SceneResult]) -> List[str]:
    lines = ["| scene | min segment share % | PQscene merged / all kept | PQ merged / all kept | mIoU merged / all kept |",
             "|---|---|---|---|---|"]
    for r in rows:
        o, u = r.ours, r.unmerged
        lines.append(f"| {r.label} | {100 * r.min_segment_share:.2f} | " + " | ".join(
            f"{fmt1(o[f'panopticapi_{k}'])} / {fmt1(u.get(f'panopticapi_{k}'))}" for k in ("scene_pq", "pq", "miou")) + " |")
    return lines


def seeds_table(rows: List[SceneResult]) -> List[str]:
    """Per scene over its training seeds: the margins over the labels (mean, lowest, highest) and PQscene."""
    lines = ["| scene | seeds | ΔPQ mean (min..max) | ΔmIoU mean (min..max) | PQscene mean (min..max) | PSNR min |",
             "|---|---|---|---|---|---|"]

    def spread(values: List[float]) -> str:
        return f"{sum(values) / len(values):+.1f} ({min(values):+.1f}..{max(values):+.1f})"

    for scene in dict.fromkeys(r.scene for r in rows):
        runs = [r for r in rows if r.scene == scene]
        dpq = [r.ours["panopticapi_pq"] - level_labels(r, "panopticapi")["pq"] for r in runs]
        dmiou = [r.ours["panopticapi_miou"] - level_labels(r, "panopticapi")["miou"] for r in runs]
        spq = [r.ours["panopticapi_scene_pq"] for r in runs]
        lines.append(f"| {scene} | {', '.join(str(r.seed) for r in runs)} | {spread(dpq)} | {spread(dmiou)} | "
                     f"{sum(spq) / len(spq):.1f} ({min(spq):.1f}..{max(spq):.1f}) | {min(r.ours['psnr'] for r in runs):.1f} |")
    return lines


def object_outcome_table(rows: List[SceneResult]) -> List[str]:
    """Per run: how many true objects ours and the label majority found, merged, split, shaped wrong or painted."""
    kinds = ("found", "merged", "split", "shape", "painted")
    lines = ["| scene | who | " + " | ".join(kinds) + " |", "|---|---|" + "---|" * len(kinds)]
    for r in rows:
        diag = Diagnostics(**r.diagnostics)
        for who in ("majority", "ours"):
            counts = outcome_counts(diag, who)
            if counts:
                lines.append(f"| {r.label} | {who} | " + " | ".join(str(counts.get(k, 0)) for k in kinds) + " |")
    return lines


def progress_table(rows: List[SceneResult]) -> List[str]:
    lines = ["| scene | step | train min | PQscene | PQ | mIoU | PSNR |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        for p in r.progress:
            lines.append(f"| {r.label} | {p['step']} | {p['minutes']:.1f} | {fmt1(p['scene_pq'])} | {fmt1(p['pq'])} | {fmt1(p['miou'])} | {fmt1(p['psnr'])} |")
    return lines


def progress_picture(rows: List[SceneResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for k, r in enumerate(rows):
        colour = f"C{k}"
        ax.plot([p["minutes"] for p in r.progress], [p["scene_pq"] for p in r.progress], "o-", color=colour, label=f"{r.label} ours PQscene")
        ax.axhline(r.labels["panopticapi_pq"], color=colour, ls="--", lw=1, label=f"{r.label} labels PQ")
    ax.set_xlabel("training minutes (2 CPU cores)")
    ax.set_ylabel("% (panopticapi protocol)")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_realistic(opts: RealisticOptions, output_dir: Path, print_table) -> List[SceneResult]:
    console = Console()
    output_dir.mkdir(parents=True, exist_ok=True)
    scenes = rooms_under(opts.root, opts.scenes)
    if opts.quick:
        scenes = scenes[:1]
        opts = replace(opts, steps=opts.steps or 100, progress_points=2, quick=True)
    start = time.perf_counter()
    rows = []
    for room in scenes:  # results.json after every run, so a long benchmark that is stopped keeps what it measured
        for form in opts.label_forms:
            data = room if form == "distributions" else coco_labelled_copy(room, output_dir / "rooms", console)
            for seed in opts.training_seeds:
                rows.append(run_scene(opts, data, output_dir, console, seed))
            (output_dir / "results.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    rooms = "shipped realistic rooms" if Path(opts.root).resolve() == SHIPPED else f"realistic rooms under {opts.root}"
    head = (f"{opts.preset}, {opts.steps or PRESETS[opts.preset].config.max_num_iterations} steps, {rooms} "
            "(48 training / 12 test views of 192x144 when made with the defaults); test views against ground truth, "
            "PQ/mIoU in %; "
            f"training seed(s) {', '.join(map(str, opts.training_seeds))}"
            + (f"; model settings on top of the preset: {settings_text(opts.model_settings)}" if opts.model_settings else ""))
    md = ["# Realistic rooms: 2D labels vs ours", "", head, ""]
    for protocol in PROTOCOLS:
        t = main_table(rows, protocol)
        md += [f"## {protocol} protocol", "", *t, ""]
        print_table(console, f"Realistic rooms ({protocol} protocol): 2D labels vs ours", t)
    sections = [("Targets (panopticapi protocol)", targets_table(rows)),
                *([("Over training seeds (panopticapi)", seeds_table(rows))] if len(opts.training_seeds) > 1 else []),
                ("Diagnostics", diagnostics_table(rows)),
                ("Small rendered segments merged vs all kept (ours, panopticapi)", merging_table(rows)),
                ("Interpolated test views and views off the walk (panopticapi)", off_walk_table(rows)),
                ("PQscene against training time (panopticapi)", progress_table(rows))]
    for title, t in sections:
        md += [f"## {title}", "", *t, ""]
        print_table(console, title, t)
    outcomes = object_outcome_table(rows)
    if len(outcomes) > 2:
        md += ["## Where the true objects go (test views; ours and the label majority over all views, the labels "
               "per view)", "", *outcomes, ""]
        print_table(console, "Where the true objects go", outcomes)
    for r in rows:
        diag = Diagnostics(**r.diagnostics)
        md += [f"## Per class: {r.label}", "", *per_class_markdown(diag), ""]
        if diag.per_object:
            md += [f"## Per object: {r.label}", "", f"![{r.label}: where ours loses to the label majority]"
                   f"(losses_{r.label.replace(' ', '_')}.png)", "", *per_object_markdown(diag), ""]
    progress_picture(rows, output_dir / "pqscene_vs_time.png")
    (output_dir / "results.md").write_text("\n".join(md))
    (output_dir / "results.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    console.print(f"{head}\nTotal {time.perf_counter() - start:.0f} s; wrote {output_dir / 'results.md'}, results.json, "
                  f"pqscene_vs_time.png")
    return rows
