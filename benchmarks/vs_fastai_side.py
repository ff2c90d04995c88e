"""fastai's side of benchmarks/vs_fastai.py, run by fastai's own Python (a virtualenv with
fastai, never lowres's): the recipe fastai's docs teach for training from scratch.

    FASTAI_PYTHON benchmarks/vs_fastai_side.py SUBSET SEED EPOCHS BATCH

SUBSET holds train/<class>/ and val/<class>/. Prints the figures as one line
`RESULT {json}` after fastai's own output: val accuracy plain and with fastai's TTA
(Learner.tta: its training augmentation, 4 views, blended with the plain view), the LR that
lr_find's valley rule chose, and the seconds of each phase.
"""
import json
import sys
import time
from pathlib import Path

from fastai.vision.all import (ImageDataLoaders, Learner, accuracy, aug_transforms, set_seed,
                               xresnet18)


def main() -> None:
    subset, seed, epochs, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    set_seed(seed)
    t0 = time.time()
    dls = ImageDataLoaders.from_folder(subset, train="train", valid="val",
                                       batch_tfms=aug_transforms(), bs=batch)
    learn = Learner(dls, xresnet18(n_out=dls.c), metrics=accuracy)
    t1 = time.time()
    lr = float(learn.lr_find(show_plot=False).valley)
    t2 = time.time()
    learn.fit_one_cycle(epochs, lr)
    t3 = time.time()
    preds, targets = learn.get_preds()
    plain = float((preds.argmax(1) == targets).float().mean())
    t4 = time.time()
    tta_preds, tta_targets = learn.tta()
    tta = float((tta_preds.argmax(1) == tta_targets).float().mean())
    t5 = time.time()
    print("RESULT " + json.dumps({
        "seed": seed, "epochs": epochs, "lr": lr, "val_acc": plain, "val_acc_tta": tta,
        "val_images": int(len(targets)), "train_images": len(dls.train_ds),
        "seconds": {"setup": t1 - t0, "lr_find": t2 - t1, "fit": t3 - t2, "predict": t4 - t3,
                    "tta": t5 - t4, "total": t5 - t0},
    }), flush=True)


if __name__ == "__main__":
    main()
