"""A picture of what the network sees: one beat of each AAMI class beside its spectrogram image."""

from pathlib import Path

import numpy as np

from ecgedge.data.aami import AAMI_CLASSES
from ecgedge.data.beats import extract_beats
from ecgedge.data.records import read_record
from ecgedge.data.summary import BeatIndex
from ecgedge.errors import EcgEdgeError
from ecgedge.preprocess import PreprocessConfig, beats_to_images
from ecgedge.preprocess.spectrogram import n_frames

CLASS_NAMES = {
    "N": "N: normal / bundle branch block",
    "S": "S: supraventricular ectopic",
    "V": "V: ventricular ectopic",
    "F": "F: fusion",
    "Q": "Q: unknown / paced-like",
}


def save_look(data_dir: Path, index: BeatIndex, config: PreprocessConfig, out: Path) -> Path:
    """Write a PNG with, per class, the first beat found (signal left, image right)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EcgEdgeError("the look needs matplotlib: pip install 'ecgedge[plots]'.") from None

    examples = []
    for label, cls in enumerate(AAMI_CLASSES):
        hits = np.flatnonzero(index.labels == label)
        if len(hits) == 0:
            continue
        record = str(index.records[hits[0]])
        beats = extract_beats(read_record(data_dir, record, config.lead, config.fs), config)
        i = int(np.flatnonzero(beats.labels == label)[0])
        examples.append((cls, record, int(beats.samples[i]), beats.windows[i]))
    if not examples:
        raise EcgEdgeError("no beats to show: the chosen records have no AAMI beats.")

    images = beats_to_images(np.stack([e[3] for e in examples]), config)
    fig, axes = plt.subplots(len(examples), 2, figsize=(9, 2.2 * len(examples)), squeeze=False)
    t = (np.arange(config.window.length) - config.window.before) / config.fs
    fmax = config.spectrogram.fmax_hz or config.fs / 2
    spec = config.spectrogram
    frames = n_frames(spec, config.window.length)
    # Each image column is an STFT frame, placed at the centre of the samples it covers.
    first, last = (spec.win_length / 2 - config.window.before) / config.fs, ((frames - 1) * spec.hop + spec.win_length / 2 - config.window.before) / config.fs
    for row, ((cls, record, sample, window), image) in enumerate(zip(examples, images)):
        ax_sig, ax_img = axes[row]
        ax_sig.plot(t, window, lw=0.8, color="black")
        ax_sig.axvline(0, color="tab:red", lw=0.6, ls="--")
        ax_sig.set_title(f"{CLASS_NAMES[cls]} (record {record}, sample {sample})", fontsize=9)
        ax_sig.set_ylabel(f"{config.lead} (mV)")
        ax_img.imshow(image, cmap="magma", aspect="auto", extent=(first, last, 0, fmax))
        ax_img.set_title(f"network input {image.shape[0]}x{image.shape[1]} (uint8)", fontsize=9)
        ax_img.set_ylabel("Hz")
    axes[-1][0].set_xlabel("s from R peak")
    axes[-1][1].set_xlabel("s from R peak")
    fig.suptitle(f"preset {config.name}: beat windows and their STFT images", fontsize=11)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
