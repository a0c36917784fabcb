"""Where the model is wrong: the most confidently wrong test images and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from cnnlab.guards import check_int
from cnnlab.viz._common import eval_set, new_figure, predict_logits, show_image

MAX_TOP = 256  # mistakes drawn at most: one subplot each


@dataclass
class Mistake:
    index: int  # position in the evaluated test images
    true: int
    pred: int
    confidence: float  # probability given to the (wrong) predicted class
    true_prob: float  # probability given to the true class


@dataclass
class ErrorsResult:
    mistakes: list[Mistake]  # most confident first
    num_wrong: int
    num_images: int
    classes: list[str]
    figure: Any

    @property
    def accuracy(self) -> float:
        return 1 - self.num_wrong / self.num_images

    def table(self) -> str:
        lines = [f"{self.num_wrong} of {self.num_images} test images wrong "
                 f"(accuracy {self.accuracy:.2%}); the most confident mistakes:",
                 f"{'index':>6}  {'true':<14} {'predicted':<14} {'p(pred)':>8} {'p(true)':>8}"]
        for m in self.mistakes:
            lines.append(f"{m.index:>6}  {self.classes[m.true]:<14} {self.classes[m.pred]:<14} "
                         f"{m.confidence:>8.3f} {m.true_prob:>8.3f}")
        return "\n".join(lines)


def errors(model: nn.Module, data: Any, top: int = 16, max_images: int | None = None
           ) -> ErrorsResult:
    """The ``top`` test images the model gets wrong with the highest confidence.

    Example:
        >>> import torch; from torch import nn
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 3))
        >>> X, y = torch.rand(20, 1, 28, 28), torch.randint(0, 3, (20,))
        >>> r = errors(net, (X, y, ["a", "b", "c"]), top=4)
        >>> len(r.mistakes) <= 4 and r.num_images == 20
        True
    """
    top = check_int("top", top, most=MAX_TOP)  # one subplot per mistake
    ev = eval_set(data, max_images)
    probs = torch.softmax(predict_logits(model, ev.X), dim=1)
    conf, pred = probs.max(dim=1)
    wrong = (pred != ev.y).nonzero().flatten()
    order = wrong[torch.argsort(conf[wrong], descending=True)][:top]
    mistakes = [Mistake(int(i), int(ev.y[i]), int(pred[i]), float(conf[i]),
                        float(probs[i, ev.y[i]])) for i in order]
    classes = ev.classes if len(ev.classes) >= probs.shape[1] else \
        [str(i) for i in range(probs.shape[1])]

    cols = 4 if top <= 16 else 6
    rows = max(1, -(-len(mistakes) // cols))
    fig = new_figure(2.1 * cols, 2.35 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for ax in axes:
        ax.set_axis_off()
    for ax, m in zip(axes, mistakes):
        ax.set_axis_on()
        show_image(ax, ev.X[m.index],
                   f"true: {classes[m.true]}\npred: {classes[m.pred]} ({m.confidence:.0%})")
    if not mistakes:
        axes[0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.suptitle(f"most confidently wrong: {len(wrong)} of {len(ev.y)} wrong "
                 f"(accuracy {1 - len(wrong) / len(ev.y):.1%})", fontsize=10)
    return ErrorsResult(mistakes, int(len(wrong)), int(len(ev.y)), classes, fig)


@dataclass
class ConfusionResult:
    matrix: torch.Tensor  # [true, predicted] counts
    classes: list[str]
    figure: Any

    @property
    def accuracy(self) -> float:
        return float(self.matrix.diagonal().sum() / self.matrix.sum().clamp_min(1))

    @property
    def per_class_accuracy(self) -> list[float]:
        return (self.matrix.diagonal() / self.matrix.sum(dim=1).clamp_min(1)).tolist()

    def table(self) -> str:
        lines = [f"accuracy {self.accuracy:.2%} on {int(self.matrix.sum())} test images",
                 f"{'class':<14} {'recall':>7}  most often mistaken for"]
        for i, (name, acc) in enumerate(zip(self.classes, self.per_class_accuracy)):
            row = self.matrix[i].clone()
            row[i] = -1
            j = int(row.argmax())
            other = f"{self.classes[j]} ({int(self.matrix[i, j])})" if row[j] > 0 else "-"
            lines.append(f"{name:<14} {acc:>7.1%}  {other}")
        return "\n".join(lines)


def confusion(model: nn.Module, data: Any, max_images: int | None = None) -> ConfusionResult:
    """Confusion matrix (rows: true class, columns: predicted) drawn with the counts.

    Example:
        >>> import torch; from torch import nn
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 3))
        >>> r = confusion(net, (torch.rand(30, 1, 28, 28), torch.randint(0, 3, (30,))))
        >>> int(r.matrix.sum())
        30
    """
    ev = eval_set(data, max_images)
    pred = predict_logits(model, ev.X).argmax(dim=1)
    k = max(int(pred.max()), int(ev.y.max()), len(ev.classes) - 1) + 1
    cm = torch.bincount(ev.y * k + pred, minlength=k * k).reshape(k, k)
    classes = ev.classes if len(ev.classes) == k else [str(i) for i in range(k)]
    fig = new_figure(1.0 + 0.62 * k, 0.8 + 0.55 * k)
    ax = fig.add_subplot()
    # colour by the fraction of each true class, so rare classes are as visible
    frac = cm.float() / cm.sum(dim=1, keepdim=True).clamp_min(1)
    im = ax.imshow(frac.numpy(), cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, shrink=0.8, label="fraction of the true class")
    acc = float(cm.diagonal().sum() / cm.sum().clamp_min(1))
    ax.set_title(f"confusion matrix: accuracy {acc:.1%} on {int(cm.sum())} images", fontsize=10)
    return ConfusionResult(cm, classes, fig)
