"""
Fine-tuning a fitted ``BatchNormScaler`` in PyTorch, and bringing it back
=========================================================================

A :class:`~skbn.BatchNormScaler` is batch normalization's inference
transform, so a fitted scaler *is* a ``torch.nn.BatchNorm1d`` layer:
:meth:`~skbn.BatchNormScaler.to_torch` builds that layer, and
:meth:`~skbn.BatchNormScaler.from_torch` turns a layer back into a scaler.

This example

1. fits the scaler on the training part of scikit-learn's breast-cancer data
   set (30 features on very different scales);
2. exports it with ``to_torch`` as the first layer of a small PyTorch model,
   ``BatchNorm1d -> Linear``, and trains that model for a few epochs, so that
   the optimizer learns the layer's ``weight`` and ``bias`` (the scaler's
   ``gamma`` and ``beta``) together with the linear layer;
3. imports the trained layer with ``BatchNormScaler.from_torch`` and uses it
   in a scikit-learn :class:`~sklearn.pipeline.Pipeline`, which now scales
   with the learned ``gamma_`` and ``beta_``.

**Freezing the running statistics.** In train mode a ``BatchNorm1d``
normalizes each mini-batch by *its own* mean and variance, and moves its
running statistics toward them.  Neither is wanted here: the statistics
were already learned from the whole training set by the scaler, and the
model should be trained on the very function it will compute at inference.
So the layer is kept in **eval mode** during training (``bn.eval()`` after
``model.train()``): it then normalizes with the running statistics, exactly
as ``transform`` does, never updates them, and still passes gradients to
``weight`` and ``bias``.  (``momentum=0`` would freeze the statistics too,
but the layer would still normalize by the batch statistics while training.)

**Refitting the imported scaler.** ``from_torch`` gives a scaler set up to
*continue* PyTorch's running averages (``init="keras"``, ``unbiased=True``,
the module's momentum), with the learned weights as its ``gamma`` and
``beta`` parameters.  A ``fit`` would restart its statistics from 0 and 1 by
PyTorch's rule, so the Pipeline below wraps it in
:class:`~sklearn.frozen.FrozenEstimator`: the Pipeline's ``fit`` trains the
classifier only, on the scaler's fitted output.
"""

# The thumbnail in the gallery (this script is shown, not run, while the site
# is built): drawn by docs/thumbnails/make_thumbnails.py.
# sphinx_gallery_thumbnail_path = "thumbnails/torch_finetune.png"

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from skbn import BatchNormScaler

EPOCHS = 30
BATCH = 64


def train(model, bn, X, y, epochs=EPOCHS, batch=BATCH, seed=0):
    """Adam on the cross-entropy, with the batch-norm layer kept in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    bn.eval()  # normalize with the scaler's statistics, never update them
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(X), generator=generator)
        total = 0.0
        for start in range(0, len(X), batch):
            rows = order[start : start + batch]
            optimizer.zero_grad()
            loss = loss_fn(model(X[rows]), y[rows])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
        if epoch in (1, 5, 10, 20, epochs):
            print(f"  epoch {epoch:>2}: training loss {total / len(X):.4f}")
    model.eval()


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)  # a tiny model: more threads only add overhead
    data = load_breast_cancer()
    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=0, stratify=data.target
    )

    # 1. The scaler, fitted on the training set (one batch: its exact mean and variance).
    scaler = BatchNormScaler().fit(X_train)

    # 2. Export it as the first layer of a PyTorch model, and train.
    bn = scaler.to_torch()  # float32 BatchNorm1d in eval mode
    print(f"exported: {bn}")
    model = torch.nn.Sequential(bn, torch.nn.Linear(X_train.shape[1], 2))
    Xt = torch.from_numpy(X_train.astype(np.float32))
    yt = torch.from_numpy(y_train)
    running_mean = bn.running_mean.clone()
    print(f"training BatchNorm1d -> Linear for {EPOCHS} epochs (batches of {BATCH}):")
    train(model, bn, Xt, yt)
    assert torch.equal(bn.running_mean, running_mean), "the running statistics moved"
    with torch.no_grad():
        logits = model(torch.from_numpy(X_test.astype(np.float32)))
    torch_accuracy = (logits.argmax(dim=1).numpy() == y_test).mean()

    # 3. Back to scikit-learn: the learned weight and bias are gamma_ and beta_.
    learned = BatchNormScaler.from_torch(bn)
    with torch.no_grad():
        bn_out = bn(torch.from_numpy(X_test.astype(np.float32))).numpy()
    gap = np.abs(learned.transform(X_test.astype(np.float32)) - bn_out).max()
    params = {k: learned.get_params()[k] for k in ("momentum", "epsilon", "unbiased", "init")}
    print(f"\nimported: BatchNormScaler with {params} and the learned gamma, beta")
    print(f"max |transform - BatchNorm1d output| on the test set: {gap:.1e}")
    order = np.argsort(-np.abs(learned.gamma_ - 1.0))[:6]
    print("\nfeatures whose gamma moved most (they started at gamma=1, beta=0):")
    print(f"  {'feature':<24} {'gamma_':>8} {'beta_':>8}")
    for j in order:
        name = data.feature_names[j]
        print(f"  {name:<24} {learned.gamma_[j]:>8.3f} {learned.beta_[j]:>8.3f}")
    print(
        f"  gamma_ over all {len(learned.gamma_)} features: "
        f"{learned.gamma_.min():.3f} to {learned.gamma_.max():.3f}; "
        f"beta_: {learned.beta_.min():.3f} to {learned.beta_.max():.3f}"
    )

    pipelines = {
        "fitted scaler (gamma 1, beta 0)": scaler,
        "fine-tuned scaler (learned gamma, beta)": learned,
    }
    print("\ntest accuracy")
    print(f"  {'PyTorch: BatchNorm1d -> Linear':<50} {torch_accuracy:.4f}")
    for label, step in pipelines.items():
        pipe = Pipeline(
            [("scale", FrozenEstimator(step)), ("clf", LogisticRegression(max_iter=1000))]
        )
        pipe.fit(X_train, y_train)  # fits the classifier; the scaler stays as it is
        assert np.array_equal(pipe.named_steps["scale"].estimator.gamma_, step.gamma_)
        print(f"  {'Pipeline: ' + label:<50} {pipe.score(X_test, y_test):.4f}")
    print(
        "\nThe Pipeline scales with the gamma_ and beta_ learned in PyTorch.  A\n"
        "LogisticRegression can absorb a per-feature scale and offset into its own\n"
        "coefficients, so its accuracy hardly depends on them (here: not at all);\n"
        "what they carry is the network's learned normalization, now a plain\n"
        "scikit-learn step."
    )


if __name__ == "__main__":
    main()
