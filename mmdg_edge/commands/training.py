"""Training commands: train, eval, bundle (the train extra: torch, open_clip, scikit-learn, matplotlib)."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import click

from .common import Renamed, echo_json, require_torch, sdk_errors
from .models import resolve_checkpoint

_LIST_PROTOCOLS = "CPS-W, CPW-S, CSW-P, PSW-C, CW-PS, PS-CW, flexmodal-cefa, flexmodal-wmca[-ATTACK]"


def _synthetic_sizes(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[Tuple[int, ...]]:
    """``--synthetic-samples TRAIN,VAL,TEST`` → three counts (checked here; nothing heavy is imported)."""
    if value is None:
        return None
    try:
        sizes = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected three counts TRAIN,VAL,TEST such as 320,96,128, got {value!r}") from None
    if len(sizes) != 3 or min(sizes) < 2:
        raise click.BadParameter(f"expected three counts of at least 2 framesets each, got {value!r}")
    return sizes


def _source_options(func):
    """--protocol / --data and what a protocol needs: the data root and the split lists."""
    options = [
        click.option("--protocol", default=None,
                     help=f"A benchmark protocol ({_LIST_PROTOCOLS}) or syn:TRAIN-TEST on the synthetic camera's domains "
                          "(e.g. syn:012-3, no data needed)."),
        click.option("--data", "collection", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Or: your own collection (`mmdg-edge collect`): its subject- and instrument-disjoint splits."),
        click.option("--data-root", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Benchmark protocols: the folder the split-list image paths are relative to."),
        click.option("--protocols-dir", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Benchmark protocols: the folder of the split lists (MMDG-Benchmark/, FlexModal_Protocols/); "
                          "they are not shipped with the package."),
        click.option("--synthetic-samples", "sizes", default=None, callback=_synthetic_sizes, metavar="TRAIN,VAL,TEST",
                     help="syn: protocols only: framesets rendered per split (default 320,96,128)."),
        click.option("--seed", default=None, type=int,
                     help="Seed (default 0) of initialisation, shuffling, synthetic data and a collection's splits; "
                          "eval --data: default the split seed the checkpoint was fine-tuned with."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _check_source(protocol: Optional[str], collection: Optional[str], **protocol_only: Any) -> None:
    if (protocol is None) == (collection is None):
        raise click.UsageError("give --protocol NAME or --data FOLDER (one of them)")
    given = [name for name, value in protocol_only.items() if value not in (None, False)]
    if collection is not None and given:
        options = ", ".join("--" + name for name in given)
        raise click.UsageError(f"{options}: for --protocol runs only; with --data they would be ignored")


@click.command("train")
@_source_options
@click.option("--init", default=None,
              help="Start from this checkpoint (or 'demo'); with --data the default is the demo model.")
@click.option("--model-size", "--config", "model_size", cls=Renamed, type=click.Choice(["paper", "tiny"]), default="paper",
              show_default=True, help="Without --init: the paper's ViT-B/16 or the tiny test/demo model.")
@click.option("--pretrained", default=None,
              help="CLIP weights for --model-size paper: 'openai' (downloads) or a local weights file.")
@click.option("--epochs", default=None, type=click.IntRange(min=1),
              help="Epochs. Default 80: the nearest published prior, the same group's DADM script (neither paper "
                   "states it); fine-tuning a model trained from scratch on --data (the demo model): 3.")
@click.option("--lr", default=None, type=click.FloatRange(min=0, min_open=True),
              help="Adam learning rate. Default 5e-5 (DADM prior, as --epochs); fine-tuning a model trained from "
                   "scratch on --data (the demo model): 1e-3.")
@click.option("--weight-decay", default=5e-5, show_default=True, type=click.FloatRange(min=0),
              help="Adam weight decay (DADM prior, as --epochs).")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1),
              help="Global batch size, split over torchrun processes (DADM prior, as --epochs).")
@click.option("--no-regrad", is_flag=True, help="Switch ReGrad off (ablation).")
@click.option("--no-adp", is_flag=True, help="Switch the asymmetric domain prompts off (ablation; with --no-regrad: plain fine-tuning).")
@click.option("--amp", is_flag=True, help="bfloat16 autocast for forward and losses.")
@click.option("--train-backbone", is_flag=True, help="Train the CLIP backbone too (lets a tiny model learn from scratch).")
@click.option("--workers", default=0, show_default=True, type=click.IntRange(min=0), help="DataLoader worker processes.")
@click.option("--resume", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Continue from a run's last.safetensors (its .state.pt beside it).")
@click.option("--output", "--out", "out_dir", cls=Renamed, required=True, type=click.Path(file_okay=False),
              help="Output folder (best/last checkpoints, history.json).")
def train_command(protocol, collection, data_root, protocols_dir, sizes, seed, init, model_size, pretrained, epochs, lr,
                  weight_decay, batch_size, no_regrad, no_adp, amp, train_backbone, workers, resume, out_dir) -> None:
    """Train MMDG++ (ReGrad + ADPs) on a protocol, or fine-tune it on your own collection.

    Keeps the best checkpoint by validation HTER, with its validation threshold, and prints its path.
    Multi-GPU: run under torchrun.
    """
    _check_source(protocol, collection, resume=resume, pretrained=pretrained, **{
        "train-backbone": train_backbone, "data-root": data_root, "protocols-dir": protocols_dir,
        "synthetic-samples": sizes})
    require_torch("train")
    import dataclasses

    from ..model import MMDGConfig
    from ..train.trainer import TrainConfig

    with sdk_errors():
        seed = 0 if seed is None else seed
        options = dict(weight_decay=weight_decay, batch_size=batch_size, regrad=not no_regrad, adp=not no_adp, amp=amp,
                       seed=seed, num_workers=workers)
        chosen = {key: value for key, value in (("epochs", epochs), ("lr", lr)) if value is not None}
        if collection is not None:
            from ..train.finetune import finetune_on_collection, finetune_schedule

            start = resolve_checkpoint(init or "demo")
            schedule = {**finetune_schedule(start), **chosen}
            click.echo(f"fine-tuning {start}: {schedule['epochs']} epochs at lr {schedule['lr']:g}", err=True)
            result = finetune_on_collection(collection, start, TrainConfig(**schedule, **options), out_dir, seed)
        else:
            from ..train.experiment import SyntheticSizes, run_training

            model_config = MMDGConfig.tiny() if model_size == "tiny" else MMDGConfig.paper(pretrained=pretrained)
            if train_backbone:
                model_config = dataclasses.replace(model_config, train_backbone=True)
            config = TrainConfig(**chosen, **options)
            result = run_training(protocol, model_config, config, out_dir, data_root, protocols_dir,
                                  SyntheticSizes(*sizes) if sizes else SyntheticSizes(), resume=resume,
                                  init=resolve_checkpoint(init) if init else None)
    if result["best_checkpoint"] is None:
        raise click.ClickException("no epoch produced a checkpoint")
    click.echo(result["best_checkpoint"])
    click.echo(f"best validation HTER {result['best_hter']:.4f}", err=True)


@click.command("eval")
@click.argument("checkpoint")
@_source_options
@click.option("--test-missing", default=None, help="Protocols: modalities absent at test: depth, ir or depth,ir (protocol 2).")
@click.option("--roc", type=click.Path(dir_okay=False), default=None, help="Protocols: ROC plot PNG to write.")
@click.option("--det", type=click.Path(dir_okay=False), default=None, help="DET plot PNG to write (operating point marked).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Text tables, or JSON.")
def eval_command(checkpoint, protocol, collection, data_root, protocols_dir, sizes, seed, test_missing, roc, det,
                 output_format) -> None:
    """Score a checkpoint (.safetensors, or 'demo') on a protocol's test split, or your collection's test subjects.

    At the threshold stored in the checkpoint (chosen on validation data): HTER, AUC, EER,
    TPR@FPR=1 % and the ISO/IEC 30107-3 report per attack species with 95 % intervals.
    """
    _check_source(protocol, collection, roc=roc, **{"test-missing": test_missing, "data-root": data_root,
                                                    "protocols-dir": protocols_dir, "synthetic-samples": sizes})
    require_torch("eval")
    from ..train.reporting import format_table

    checkpoint = resolve_checkpoint(checkpoint)
    with sdk_errors():
        if collection is not None:
            from ..train.finetune import evaluate_on_collection

            result = evaluate_on_collection(checkpoint, collection, seed, det)
            summary: Dict[str, Any] = {"data": collection, "samples": result["samples"],
                                       "framesets": result["framesets"]}
        else:
            from ..train.experiment import SyntheticSizes, evaluate_checkpoint

            result = evaluate_checkpoint(checkpoint, protocol, data_root, protocols_dir, test_missing, roc,
                                         SyntheticSizes(*sizes) if sizes else SyntheticSizes(), seed=seed or 0,
                                         det_path=det)
            summary = {"protocol": result["protocol"], "samples": result["samples"],
                       "test_missing": result["test_missing"],
                       **{k: result[k] for k in ("hter", "auc", "eer", "tpr_at_fpr_1", "threshold")},
                       "apcer": result["apcer"].to_dict(), "bpcer": result["bpcer"].to_dict()}
    plots = {kind: result[kind] for kind in ("roc", "det") if kind in result}
    if output_format == "json":
        framesets = {"iso_framesets": result["iso_framesets"].to_dict()} if "iso_framesets" in result else {}
        echo_json({**summary, "iso": result["iso"].to_dict(), **framesets, "plots": plots})
        return
    source = f"protocol {summary['protocol']}" if collection is None else f"collection {collection} (test subjects)"
    missing = f"  missing {','.join(summary['test_missing'])}" if summary.get("test_missing") else ""
    counted = f"presentations {summary['samples']} (recordings), framesets {summary['framesets']}" \
        if collection is not None else f"samples {summary['samples']}"
    click.echo(f"{source}  {counted}{missing}")
    for key, value in summary.items():
        if isinstance(value, float):
            click.echo(f"{key:<14}{value:.4f}")
        elif isinstance(value, dict):
            click.echo(f"{key:<14}{value['value']:.4f}  ({value['errors']}/{value['trials']}, 95% CI "
                       f"{value['lower']:.4f}-{value['upper']:.4f}; HTER pools all attacks)")
    if "iso_framesets" in result:
        click.echo("per presentation (each recording is one, as ISO/IEC 30107-3 counts):")
    click.echo(format_table(result["iso"]))
    if "iso_framesets" in result:
        click.echo("per frameset (a second column only: framesets of one recording are not independent trials):")
        click.echo(format_table(result["iso_framesets"]))
    for kind, path in plots.items():
        click.echo(f"{kind.upper()} plot: {path}", err=True)


@click.command("bundle")
@click.argument("checkpoint")
@click.option("--data", "collection", required=True, type=click.Path(exists=True, file_okay=False),
              help="The collection the checkpoint was fine-tuned on: calibration on its validation subjects, "
                   "the report on its test subjects.")
@click.option("--output", required=True, type=click.Path(file_okay=False), help="The bundle folder to write (new or "
                                                                                   "empty).")
@click.option("--target-apcer", default=0.05, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Highest share of attacks allowed through (needs ln 0.025 / ln(1 − target) validation attack framesets: 72 for 0.05).")
@click.option("--band", default=0.05, show_default=True, type=click.FloatRange(0, 0.5, max_open=True),
              help="Uncertainty band around the threshold.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Private key (NAME.key): sign every file and the bundle index.")
@click.option("--seed", "split_seed", default=None, type=int,
              help="Seed of the collection's splits (default: the one the checkpoint was fine-tuned with).")
def bundle_command(checkpoint, collection, output, target_apcer, band, key, split_seed) -> None:
    """One folder for the kiosk: FP32 and INT8 models, their device profiles, the held-out report and DET plot.

    Load it with `Detector.load(folder)` or `--model folder`; every file is checked against the
    digests in its bundle.json. Prints the bundle folder.
    """
    require_torch("bundle")
    from ..bundle import PRECISIONS, read_bundle
    from ..profile import DeviceProfile
    from ..train.bundle import create_bundle

    with sdk_errors():
        create_bundle(resolve_checkpoint(checkpoint), collection, output, target_apcer=target_apcer,
                      uncertainty_band=band, key=key, split_seed=split_seed)
        for precision in PRECISIONS:
            shortfall = DeviceProfile.load(read_bundle(output, precision).profile).report.shortfall()
            if shortfall:
                click.echo(f"warning: {output} ({precision} profile): {shortfall}", err=True)
    click.echo(output)

