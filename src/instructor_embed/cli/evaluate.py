"""``instructor-embed evaluate``: MTEB and local tasks with instructions."""

from __future__ import annotations

import argparse
import sys

from .options import add_model_options


def add_parser(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate on MTEB tasks (offline: local tasks from the shared data)",
        description="Evaluate models on MTEB tasks with each task's instruction, using mteb's own evaluators. "
        "Tasks with local data (see 'all-local') are read from --data-dir; others are fetched by mteb; a .json "
        "entry is a task spec on your own data (sts, classification, clustering, retrieval or reranking). "
        "Writes OUTPUT/results.json and results.md (several models: one folder each, plus comparison.md and "
        "comparison.png). Needs the 'eval' extra.",
    )
    evaluate.add_argument("--model", action="append", required=True, help="Hub id or directory; repeat to compare")
    evaluate.add_argument(
        "--tasks",
        help="comma-separated MTEB task names, task spec files (.json), or all-local (STSBenchmark, STS12-16, "
        "SICK-R, Banking77Classification, MSMARCO-sample, Billboard-cnndm, Billboard-mscoco)",
    )
    evaluate.add_argument("--output-dir", required=True)
    evaluate.add_argument(
        "--instructions",
        help="hkunlp/instructor-{base,large,xl}, a JSON file, or none "
        "(default: the set matching the model id, else none)",
    )
    evaluate.add_argument("--batch-size", type=int, default=32)
    evaluate.add_argument(
        "--data-dir", help="local task data (default: $INSTRUCTOR_EMBED_SHARED/data or ../shared/data)"
    )
    prompts = evaluate.add_argument_group(
        "prompt retrieval",
        "the paper's third benchmark: demonstrations chosen by the embedder, completed by a causal LM, scored "
        "(ROUGE-L or accuracy) against random demonstrations and zero-shot; writes OUTPUT/prompt_retrieval.json "
        "and .md",
    )
    prompts.add_argument(
        "--prompt-retrieval",
        nargs="+",
        metavar="TASK_SPEC",
        help='task specs (.json): {"name", "type": "prompt-retrieval", "pool", "test" (JSONL with input and '
        'output), "template" ("...{input}...{output}"), "metric" (rouge-l or accuracy), "instruction", "k", '
        '"max_new_tokens"}',
    )
    prompts.add_argument("--lm", help="Hugging Face causal language model (Hub id or directory)")
    prompts.add_argument("--lm-device", help="the LM's device (default: cuda if present, else cpu)")
    prompts.add_argument("--lm-batch-size", type=int, default=8, help="prompts per generate call")
    prompts.add_argument("--seed", type=int, default=0, help="seed of the random-demonstration baseline")
    add_model_options(evaluate)
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..evaluation.runner import EvalConfig, evaluate

    if not args.tasks and not args.prompt_retrieval:
        raise InputError("give --tasks, --prompt-retrieval, or both")
    if args.prompt_retrieval and not args.lm:
        raise InputError("--prompt-retrieval needs --lm: the causal language model that answers the prompts")
    config = EvalConfig(
        models=tuple(args.model),
        tasks=tuple(t.strip() for t in (args.tasks or "").split(",") if t.strip()),
        output_dir=args.output_dir,
        instructions=args.instructions,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        device=args.device,
        dtype=args.dtype,
        backend=args.backend,
        quantize=args.quantize,
        show_progress=not args.quiet,
    )
    if args.prompt_retrieval:
        from ..evaluation.in_context import evaluate_prompt_retrieval, prompt_table

        scores = evaluate_prompt_retrieval(
            config.models,
            args.prompt_retrieval,
            args.lm,
            args.output_dir,
            lm_device=args.lm_device,
            lm_batch_size=args.lm_batch_size,
            seed=args.seed,
            load_model=lambda name: config.spec(name).load(),
        )
        print(prompt_table(scores, args.lm), file=sys.stderr)
        if not config.tasks:
            return 0
    results = evaluate(config)
    failed = [f"{model}: {task}" for model, tasks in results.items() for task, s in tasks.items() if "error" in s]
    print(
        f"results written to {args.output_dir}" + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr
    )
    return 1 if failed else 0
