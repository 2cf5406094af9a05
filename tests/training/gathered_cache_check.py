"""Run by test_loop under torchrun (2 CPU processes): GradCache with cross-process negatives gives the same
loss and gradients as the plain gathered step. Prints "OK rank R" when they match."""

from __future__ import annotations

import sys

import torch
from accelerate import Accelerator

from instructor_embed import INSTRUCTOR
from instructor_embed.training.config import TrainConfig
from instructor_embed.training.data import load_medi
from instructor_embed.training.loop import Collator, _step


def main(model_dir: str, medi_file: str) -> None:
    accelerator = Accelerator(cpu=True)
    model = INSTRUCTOR(model_dir, device="cpu", max_seq_length=48)
    model.transformer.auto_model.pooler.requires_grad_(False)
    ddp = accelerator.prepare(model)
    ddp.eval()  # no dropout: both steps see the same network; gradients still flow
    data = load_medi(medi_file)
    rank = accelerator.process_index
    rows = data.tasks["qa"][rank * 3 : rank * 3 + 3]  # each rank: 3 rows of one task
    features, layout, scores = Collator(model.instruction_tokenizer, data.formats)([data.examples[i] for i in rows])
    results = []
    for chunk in (None, 2):
        model.zero_grad()
        config = TrainConfig(
            model=model_dir, data=medi_file, output_dir="unused", gather_across_processes=True, cache_chunk_size=chunk,
            cl_temperature=0.05,
        )  # fmt: skip
        loss = _step(ddp, features, layout, scores, config, accelerator)
        results.append((loss, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (plain_loss, plain), (cached_loss, cached) = results
    assert abs(plain_loss - cached_loss) < 1e-5 * abs(plain_loss), (plain_loss, cached_loss)
    assert plain.keys() == cached.keys() and len(plain) > 50
    for name, gradient in plain.items():
        torch.testing.assert_close(cached[name], gradient, atol=1e-6, rtol=1e-4, msg=name)
    print(f"OK rank {rank}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
