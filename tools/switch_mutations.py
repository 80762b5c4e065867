"""The table that ``tools/mutate_switches.py`` runs: one row per way a user-settable option can be
silently ignored, and the tests that must then fail.

Add a row for every new option (config key, command-line flag, backend option), for each place it
could be dropped: where it enters (cli.py, config.py), where the loop hands it on (loop.py), and
where the component uses it (archive, objective, trainer, ...). A row is
``M(switch, file, find, replace, tests, what)``: ``find`` must occur exactly once in ``file`` (else
the row is reported STALE and the run fails, so the table follows the code), ``replace`` is the
disabled version, ``tests`` the few pytest node ids that must catch it (keep them fast: the whole
table runs in minutes), ``what`` says in words what the mutation does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class M:
    switch: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]
    what: str = ""


SW = "tests/test_switches.py::"
LO = "tests/policy/test_local_options.py::"
CS = "tests/test_cli_switches.py::"
BUDGET = "tests/test_budget.py::"

RUN_FLAGS_TEST = (CS + "test_every_run_flag_reaches_the_config",)

# ------------------------------------------------------------------ the loop hands options on
LOOP = [
    M("objective", "tttd/loop.py", "estimator=cfg.objective", 'estimator="entropic"',
      (SW + "test_objective_and_beta_set_the_logged_advantages",), "loop always uses the entropic estimator"),
    M("beta", "tttd/loop.py", "beta=cfg.beta,", "beta=2.0,",
      (SW + "test_objective_and_beta_set_the_logged_advantages",), "loop ignores the fixed beta"),
    M("clip", "tttd/loop.py", "clip=cfg.clip))", "clip=None))",
      (SW + "test_training_options_reach_the_trainer",), "loop drops config.clip"),
    M("kl_coef", "tttd/loop.py", "kl_coef=cfg.kl_coef, ", "kl_coef=0.0, ",
      (SW + "test_training_options_reach_the_trainer",), "loop drops the KL coefficient"),
    M("learning_rate", "tttd/loop.py", "TrainConfig(learning_rate=cfg.learning_rate", "TrainConfig(learning_rate=4e-5",
      (SW + "test_training_options_reach_the_trainer",), "loop trains at the default learning rate"),
    M("train / --no-train", "tttd/loop.py", "if cfg.train and self.policy.trainable and batch:",
      "if self.policy.trainable and batch:", (SW + "test_no_train_never_trains",), "loop trains a frozen run"),
    M("temperature", "tttd/loop.py", "temperature=cfg.temperature,", "temperature=1.0,",
      (SW + "test_sampling_options_reach_the_sampler",), "loop samples at temperature 1"),
    M("max_tokens", "tttd/loop.py", "SamplingParams(max_tokens=cfg.max_tokens", "SamplingParams(max_tokens=26000",
      (SW + "test_sampling_options_reach_the_sampler",), "loop ignores max_tokens"),
    M("group_size", "tttd/loop.py", "self.policy.sample(part, cfg.group_size, params)",
      "self.policy.sample(part, 8, params)", (SW + "test_sampling_options_reach_the_sampler",),
      "loop samples 8 per group"),
    M("groups", "tttd/loop.py", "starts = self.archive.select(cfg.groups)", "starts = self.archive.select(2)",
      (SW + "test_sampling_options_reach_the_sampler",), "loop selects 2 groups"),
    M("sample_chunk_groups", "tttd/loop.py", "chunk = cfg.sample_chunk_groups or len(starts)",
      "chunk = len(starts)", (SW + "test_sampling_options_reach_the_sampler",), "one sampling call per step"),
    M("seed (sampling)", "tttd/loop.py", "seed=derive_seed(cfg.seed, step, c0)", "seed=derive_seed(0, step, c0)",
      (SW + "test_the_seed_sets_the_roots_and_the_sampling",), "sampling seed ignores the run seed"),
    M("seed (per group)", "tttd/loop.py", "seeds=[derive_seed(cfg.seed, step, g, 1)",
      "seeds=[derive_seed(0, step, g, 1)", (SW + "test_the_seed_sets_the_roots_and_the_sampling",),
      "per-group seeds ignore the run seed"),
    M("seed (roots)", "tttd/loop.py", "np.random.default_rng(self.cfg.seed)", "np.random.default_rng(0)",
      (SW + "test_the_seed_sets_the_roots_and_the_sampling",), "initial states ignore the run seed"),
    M("seed (policy)", "tttd/build.py", "full_finetune=cfg.full_finetune, seed=cfg.seed,",
      "full_finetune=cfg.full_finetune, seed=0,", (SW + "test_policy_options_reach_the_backend",),
      "backend built with seed 0"),
    M("model", "tttd/build.py", "model=cfg.model, lora_rank=cfg.lora_rank", 'model="tiny", lora_rank=cfg.lora_rank',
      (SW + "test_policy_options_reach_the_backend",), "backend always loads the tiny model"),
    M("lora_rank", "tttd/build.py", "lora_rank=cfg.lora_rank,", "lora_rank=32,",
      (SW + "test_policy_options_reach_the_backend",), "backend built with rank 32"),
    M("full_finetune", "tttd/build.py", "full_finetune=cfg.full_finetune,", "full_finetune=False,",
      (SW + "test_policy_options_reach_the_backend",), "backend never fine-tunes fully"),
    M("learning_rate (backend)", "tttd/build.py", "learning_rate=cfg.learning_rate, total_steps",
      "learning_rate=None, total_steps", (SW + "test_policy_options_reach_the_backend",),
      "backend built without the learning rate"),
    M("engine", "tttd/build.py", "engine=cfg.engine,", 'engine="auto",',
      (SW + "test_policy_options_reach_the_backend",), "backend always chooses its engine"),
    M("chat_template_kwargs", "tttd/build.py", "chat_template_kwargs=dict(cfg.chat_template_kwargs) or None,",
      "chat_template_kwargs=None,", (SW + "test_policy_options_reach_the_backend",), "chat template options dropped"),
    M("backend_options", "tttd/build.py", "kwargs.update(cfg.backend_options)", "pass",
      (SW + "test_policy_options_reach_the_backend",), "backend options dropped"),
    M("backend", "tttd/build.py", "cls = backend_class(cfg.backend)", 'cls = backend_class("local")',
      (SW + "test_policy_options_reach_the_backend",), "always the local backend"),
    M("reuse", "tttd/loop.py", "reuse=cfg.reuse, c=cfg.puct_c", 'reuse="puct", c=cfg.puct_c',
      (SW + "test_reuse_mode_and_puct_c_pick_the_start_states",), "archive always uses PUCT"),
    M("puct_c", "tttd/loop.py", "c=cfg.puct_c,", "c=1.0,",
      (SW + "test_reuse_mode_and_puct_c_pick_the_start_states",), "archive always uses c = 1"),
    M("topk_children", "tttd/loop.py", "topk_children=cfg.topk_children,", "topk_children=2,",
      (SW + "test_topk_children_bounds_the_children_kept_and_their_artifacts",), "archive keeps 2 children"),
    M("archive_size", "tttd/loop.py", "max_size=cfg.archive_size,", "max_size=1000,",
      (SW + "test_archive_size_caps_the_archive",), "archive cap ignored"),
    M("visit_counting", "tttd/loop.py", "visit_counting=cfg.visit_counting,", 'visit_counting="group",',
      (SW + "test_visit_counting",), "archive always counts groups"),
    M("child filter (loop)", "tttd/loop.py", "for j in (keep.offer(i, ev.value, ev.key) if joins else [i]):",
      "for j in ([] if joins else [i]):",
      (SW + "test_topk_children_bounds_the_children_kept_and_their_artifacts",),
      "loop keeps every child's artifact (memory bound off)"),
    M("executor", "tttd/build.py", "make_executor(cfg.executor,", 'make_executor("local",',
      (SW + "test_executor_options_reach_the_executor",), "always the local executor"),
    M("workers", "tttd/build.py", "workers=cfg.workers, cpus_per_eval=cfg.cpus_per_eval)",
      "workers=None, cpus_per_eval=cfg.cpus_per_eval)", (SW + "test_executor_options_reach_the_executor",),
      "executor built with the default workers"),
    M("cpus_per_eval (executor)", "tttd/build.py", "workers=cfg.workers, cpus_per_eval=cfg.cpus_per_eval)",
      "workers=cfg.workers, cpus_per_eval=1)", (SW + "test_executor_options_reach_the_executor",),
      "executor pins 1 CPU per evaluation"),
    M("eval_timeout_s", "tttd/build.py", "offered = dict(eval_timeout_s=cfg.eval_timeout_s,",
      "offered = dict(eval_timeout_s=None,", (SW + "test_evaluation_limits_and_task_options_reach_the_task",),
      "task built with its default timeout"),
    M("cpus_per_eval (task)", "tttd/build.py", "cpus_per_eval=cfg.cpus_per_eval,\n", "cpus_per_eval=None,\n",
      (SW + "test_evaluation_limits_and_task_options_reach_the_task",), "task built with its default threads"),
    M("eval_memory_mb", "tttd/build.py", "eval_memory_mb=cfg.eval_memory_mb)", "eval_memory_mb=None)",
      (SW + "test_evaluation_limits_and_task_options_reach_the_task",), "task built with its default memory"),
    M("task_options", "tttd/build.py", "options.update(cfg.task_options)", "pass",
      (SW + "test_evaluation_limits_and_task_options_reach_the_task",), "task options dropped"),
    M("steps", "tttd/loop.py", "while self.step < self.cfg.steps:", "while self.step < 1:",
      ("tests/test_loop.py::test_run_writes_metrics_archive_and_best",), "the run stops after one step"),
    M("checkpointing (policy state)", "tttd/runstate.py", 'policy.save(str(tmp / "policy"))', "pass",
      (SW + "test_checkpoints_hold_the_policy_state",), "checkpoints without the policy"),
    M("budgets (all caps)", "tttd/loop.py", "self.stopped = budget_stop(self.ledger, self.cfg)", "self.stopped = None",
      (BUDGET + "test_max_samples_stops_before_crossing_and_resume_continues_exactly",), "caps never checked"),
    M("log", "tttd/loop.py", "open_loggers(self.cfg.log, self.dir.path)", 'open_loggers("", self.dir.path)',
      ("tests/test_progress.py::test_tensorboard_log",), "metric logs never opened"),
]

# ------------------------------------------------------------------ components use them
COMPONENTS = [
    M("max_samples", "tttd/ledger.py", "if max_samples is not None and ledger.samples + per_step > max_samples:",
      "if False:", (BUDGET + "test_max_samples_stops_before_crossing_and_resume_continues_exactly",),
      "ledger ignores max_samples"),
    M("max_hours", "tttd/ledger.py", "if max_hours is not None:", "if False:",
      (BUDGET + "test_max_hours_stops_before_crossing_and_resume_continues_exactly",), "ledger ignores max_hours"),
    M("max_usd", "tttd/ledger.py", "if max_usd is not None and ledger.usd is not None:", "if False:",
      (BUDGET + "test_max_usd_stops_on_the_last_steps_estimate",), "ledger ignores max_usd"),
    M("prices", "tttd/ledger.py", 'table = {**DEFAULT_PRICES, **(getattr(cfg, "prices", None) or {})}',
      "table = dict(DEFAULT_PRICES)", (BUDGET + "test_max_usd_stops_on_the_last_steps_estimate",),
      "config prices ignored"),
    M("objective=entropic-fixed", "tttd/objective.py",
      'b = _adaptive_beta(r) if estimator == "entropic" else float(beta)', "b = _adaptive_beta(r)",
      (SW + "test_objective_and_beta_set_the_logged_advantages",), "fixed beta solved adaptively"),
    M("objective=entropic (adaptive beta)", "tttd/objective.py",
      'b = _adaptive_beta(r) if estimator == "entropic" else float(beta)', "b = float(beta)",
      (SW + "test_objective_and_beta_set_the_logged_advantages",), "adaptive beta replaced by the fixed one"),
    M("objective=mean", "tttd/objective.py", 'if estimator == "mean":\n        a, b', "if False:\n        a, b",
      (SW + "test_objective_and_beta_set_the_logged_advantages",), "mean baseline ignored"),
    M("reuse=none", "tttd/archive.py", 'if self.reuse == "none":', "if False:",
      (SW + "test_reuse_mode_and_puct_c_pick_the_start_states",), "best-of-N selects by PUCT"),
    M("reuse=greedy", "tttd/archive.py", 'if self.reuse == "greedy":', "if False:",
      (SW + "test_reuse_mode_and_puct_c_pick_the_start_states",), "greedy selects by PUCT"),
    M("puct_c (archive)", "tttd/archive.py", "sc = puct_scores(v, m, n, r, self.total, self.c)",
      "sc = puct_scores(v, m, n, r, self.total, 1.0)", (SW + "test_reuse_mode_and_puct_c_pick_the_start_states",),
      "selection ignores c"),
    M("puct_c (score)", "tttd/puct.py", "explore = c * scale * prior", "explore = 1.0 * scale * prior",
      (SW + "test_reuse_mode_and_puct_c_pick_the_start_states",), "PUCT score ignores c"),
    M("visit_counting (archive)", "tttd/archive.py",
      'increment = 1 if self.visit_counting == "group" else len(children)', "increment = 1",
      (SW + "test_visit_counting",), "rollout counting counts groups"),
    M("visits (ancestors)", "tttd/archive.py", "self._n[ap] += increment", "pass",
      (SW + "test_visit_counting",), "ancestors' visits not counted"),
    M("topk_children (archive)", "tttd/archive.py", "if len(kids) <= self.topk_children:", "if True:",
      ("tests/test_child_filter.py::test_prune_children_drops_the_children_beyond_top_k_at_once",),
      "prune keeps every child (until the step's flush)"),
    M("archive_size (archive)", "tttd/archive.py", "if int(keep.sum()) > self.max_size:", "if False:",
      (SW + "test_archive_size_caps_the_archive",), "flush ignores the cap"),
    M("child filter", "tttd/archive.py",
      '"""Offer the valid child ``index``; returns the indices whose artifacts may be dropped now."""',
      '"""Offer the valid child ``index``; returns the indices whose artifacts may be dropped now."""\n'
      "        return []", ("tests/test_child_filter.py",), "ChildFilter.offer returns nothing"),
    M("child filter (duplicates)", "tttd/archive.py", "if key in self.seen or key in self.archive._keys:",
      "if False:", ("tests/test_child_filter.py",), "duplicates held until update"),
    M("child filter (top k)", "tttd/archive.py", "if len(self.top) > k:", "if False:",
      ("tests/test_child_filter.py",), "all children held until update"),
    M("workers (local executor)", "tttd/executor.py",
      'cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="tttd-eval")',
      'cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tttd-eval")',
      (SW + "test_local_executor_runs_the_configured_number_of_workers",), "pool of one worker"),
    M("clip (loss)", "tttd/losses.py", "if clip is not None:", "if False:",
      ("tests/test_losses.py::test_is_loss_clipped_hand_values", LO + "test_clip_gives_the_clipped_surrogate"),
      "loss never clips"),
    M("kl_coef (shift)", "tttd/losses.py", "shifted = advantages + coef * mask * (dbar - d)",
      "shifted = advantages + 0.0 * mask * (dbar - d)", ("tests/test_losses.py::test_kl_advantage_shift_hand_values",),
      "KL shift ignores its coefficient"),
]

# ------------------------------------------------------------------ the local trainer (torch)
TRAINER = [
    M("clip (local trainer)", "tttd/policy/local.py", "ones[sl], config.clip)", "ones[sl], None)",
      (LO + "test_clip_gives_the_clipped_surrogate",), "local trainer drops config.clip"),
    M("kl_coef (local trainer)", "tttd/policy/local.py", "if config.kl_coef > 0:\n            base_lp",
      "if False:\n            base_lp", (LO + "test_kl_coef_shifts_the_advantages_by_the_distance_to_the_base",),
      "local trainer never applies the KL penalty"),
    M("kl_coef value (local trainer)", "tttd/policy/local.py",
      "kl_advantage_shift(adv, sampler_lp, base_lp, ones, config.kl_coef)",
      "kl_advantage_shift(adv, sampler_lp, base_lp, ones, 0.0)",
      (LO + "test_kl_coef_shifts_the_advantages_by_the_distance_to_the_base",), "KL penalty with coefficient 0"),
    M("learning_rate (local trainer)", "tttd/policy/local.py", 'group["lr"] = config.learning_rate', "pass",
      (LO + "test_learning_rate_sets_the_size_of_the_first_step",), "step's learning rate ignored"),
    M("lora_rank (local)", "tttd/policy/local.py", "r=lora_rank,", "r=8,",
      (LO + "test_lora_rank_sets_the_adapter_shape",), "adapter always rank 8"),
    M("micro_batch_tokens", "tttd/policy/local.py", "budget = self.micro_batch_tokens or config.micro_batch_tokens",
      "budget = config.micro_batch_tokens", (LO + "test_micro_batch_tokens_splits_the_batch",),
      "backend option micro_batch_tokens ignored"),
    M("max_grad_norm", "tttd/policy/local.py",
      "norm_cap = self.max_grad_norm if self.max_grad_norm is not None else math.inf", "norm_cap = math.inf",
      (LO + "test_max_grad_norm_caps_the_gradient_the_optimizer_sees",), "gradient never clipped"),
    M("train_unembed", "tttd/policy/local.py", "lora_targets(base, target_modules, self.train_unembed)",
      "lora_targets(base, target_modules, True)",
      ("tests/policy/test_local.py::test_train_unembed_puts_a_lora_on_the_output_layer",),
      "output-layer LoRA always on"),
    M("full_finetune (local)", "tttd/policy/local.py", "        if full_finetune:\n            self.model = base",
      "        if False:\n            self.model = base",
      ("tests/policy/test_local.py::test_full_finetune_updates_base_weights",), "full fine-tuning trains a LoRA"),
    M("gradient_checkpointing", "tttd/policy/local.py", "        if self.gradient_checkpointing:\n", "        if False:\n",
      ("tests/policy/test_local.py::test_gradient_checkpointing_same_gradient_less_saved_memory",),
      "activation checkpointing never enabled"),
    M("temperature (local sampler)", "tttd/policy/local_sampling.py", "if self.temperature != 1.0:", "if False:",
      ("tests/policy/test_local.py::test_temperature_logprobs_are_of_the_tempered_distribution",),
      "sampler ignores the temperature"),
    M("engine (local)", "tttd/policy/local.py", "choose_engine(\n            engine,", 'choose_engine(\n            "auto",',
      ("tests/policy/test_engines.py::test_cli_refuses_vllm_when_missing_in_one_line",),
      "local backend ignores the requested engine"),
]

# ------------------------------------------------------------------ the tinker and api backends
TINKER = [
    M("clip (tinker)", "tttd/policy/tinker_requests.py", "if config.clip is None:", "if True:",
      ("tests/policy/test_tinker.py::test_ppo_config", "tests/policy/test_tinker.py::test_train_step_ppo_and_empty"),
      "tinker backend never asks for the PPO loss"),
    M("kl_coef (tinker)", "tttd/policy/tinker.py", "if config.kl_coef > 0:\n            base = self.base_logprobs",
      "if False:\n            base = self.base_logprobs", ("tests/policy/test_tinker.py::test_train_step_flow_with_kl",),
      "tinker backend never applies the KL penalty"),
    M("temperature (tinker)", "tttd/policy/tinker_requests.py", "temperature=float(params.temperature),",
      "temperature=1.0,", ("tests/policy/test_tinker.py::test_build_sampling_params",),
      "tinker backend samples at temperature 1"),
    M("temperature (api)", "tttd/policy/api.py", '"temperature": float(params.temperature),', '"temperature": 1.0,',
      ("tests/policy/test_api.py::test_length_stop_seed_and_token_ids",), "api backend samples at temperature 1"),
    M("max_tokens (api)", "tttd/policy/api.py", '"max_tokens": int(params.max_tokens),', '"max_tokens": 26000,',
      ("tests/policy/test_api.py::test_length_stop_seed_and_token_ids",), "api backend ignores max_tokens"),
    M("learning_rate (tinker)", "tttd/policy/tinker.py", "optim = adam_params(config.learning_rate)",
      "optim = adam_params(4e-5)", ("tests/policy/test_tinker.py::test_train_step_flow_with_kl",),
      "tinker backend trains at the default learning rate"),
]


# ------------------------------------------------------------------ where options enter
def _flag(switch, find, replace, tests=RUN_FLAGS_TEST, file="tttd/cli/run.py"):
    return M(switch, file, find, replace, tests, f"{switch} parsed but dropped")


ENTRY = [
    _flag(f"--{flag}", f"{before}{field}=args.{attr}", f"{before}{field}=None")
    for flag, field, attr, before in [(*row, "") if len(row) == 3 else row for row in [
("model", "model", "model"),
        ("preset", "preset", "preset", "model=args.model, "),
        ("steps", "steps", "steps"), ("groups", "groups", "groups"), ("group-size", "group_size", "group_size"),
        ("lr", "learning_rate", "lr"), ("temperature", "temperature", "temperature"),
        ("max-tokens", "max_tokens", "max_tokens"), ("kl-coef", "kl_coef", "kl_coef"), ("reuse", "reuse", "reuse"),
        ("objective", "objective", "objective"), ("executor", "executor", "executor"),
        ("workers", "workers", "workers"), ("out", "out", "out"),
        ("seed", "seed", "seed", "out=args.out, "), ("log", "log", "log"),
        ("engine", "engine", "engine"), ("max-usd", "max_usd", "max_usd"),
        ("max-samples", "max_samples", "max_samples"), ("max-hours", "max_hours", "max_hours"),
    ]]
] + [
    _flag("--backend", "backend=args.backend", "backend=None", (CS + "test_the_backend_flag_reaches_the_config",)),
    _flag("--no-train", "train=False if args.no_train else None,", "train=None,"),
    _flag("--require-isolation", "require_isolation=True if args.require_isolation else None,",
          "require_isolation=None,"),
    _flag("--task-option", 'flags["task_options"] = parse_kv(args.task_option, "--task-option")', "pass"),
    _flag("--backend-option", 'flags["backend_options"] = parse_kv(args.backend_option, "--backend-option")', "pass"),
    _flag("--chat-template-option",
          'flags["chat_template_kwargs"] = parse_kv(args.chat_template_option, "--chat-template-option")', "pass"),
    _flag("--config", "file_values = load_config_file(args.config) if args.config else {}", "file_values = {}",
          (CS + "test_every_config_file_key_reaches_the_config",)),
    # require_isolation: see 'require_isolation (sandbox)' in NEW_SWITCHES (the check moved to tttd/sandbox/report.py)
    _flag("resume --steps", 'data["steps"] = args.steps', "pass", (CS + "test_resume_flags_reach_the_run",),
          file="tttd/cli/resume.py"),
    _flag("resume --max-*", "data.update(caps)", "pass", (CS + "test_resume_flags_reach_the_run",),
          file="tttd/cli/resume.py"),
    _flag("resume --accept-task-change", "accept_task_change=args.accept_task_change,", "accept_task_change=False,",
          (CS + "test_resume_flags_reach_the_run",), file="tttd/cli/resume.py"),
    _flag("demo --steps/--seed/--engine", 'demo_config(args.steps, args.seed, engine=getattr(args, "engine", None), model=model)',
          "demo_config(None, 0, model=model)", (CS + "test_demo_flags_reach_the_run",), file="tttd/cli/demo.py"),
    _flag("demo --no-train", 'modes = [("frozen", False)] if args.no_train else', 'modes = [("frozen", False)] if False else',
          (CS + "test_demo_flags_reach_the_run",), file="tttd/cli/demo.py"),
    _flag("preset", "values.update(PRESETS.get(preset, {}))", "pass",
          ("tests/test_config.py::test_precedence_defaults_preset_file_flags", CS + "test_a_preset_sets_its_values"),
          file="tttd/config.py"),
    _flag("task preset", "values.update(task_presets.get(preset, {}))", "pass",
          ("tests/test_config.py::test_precedence_defaults_preset_file_flags",), file="tttd/config.py"),
    _flag("config file values", "values.update(file_values)", "pass",
          (CS + "test_every_config_file_key_reaches_the_config",), file="tttd/config.py"),
]

# ------------------------------------------------------------------ issues 19, 20, 22, 23, 26 (issue 25b)
# Rows patch where each switch takes effect (engine, task, policy, sandbox modules), not the CLI
# modules (being moved into tttd/cli/ when these were written).
W25 = "tests/test_switches_25b.py::"
FOLD = "tests/evolve/test_folders.py::"
NEW_SWITCHES = [
    # issue 19: the sandbox's opt-in to weak isolation, and require_isolation
    M("allow_weak_isolation", "tttd/sandbox/report.py", "    if not allow_weak:\n", "    if True:\n",
      (W25 + "test_allow_weak_isolation_opts_in_to_the_weak_mode",), "check_isolation refuses even with the opt-in"),
    M("allow_weak_isolation (runner)", "tttd/sandbox/report.py", 'os.environ[WEAK_ENV] = "1"', "pass",
      (W25 + "test_allow_weak_isolation_opts_in_to_the_weak_mode",), "opt-in never reaches the runner"),
    M("weak mode needs the opt-in (runner)", "tttd/sandbox/runner.py",
      'not cfg.get("probe") and os.environ.get(WEAK_ENV) != "1"', 'not cfg.get("probe") and False',
      (W25 + "test_the_runner_runs_the_weak_mode_only_after_the_opt_in",), "runner runs the weak mode without the opt-in"),
    M("require_isolation (sandbox)", "tttd/sandbox/report.py", "    if require:  #", "    if False:  #",
      (SW + "test_require_isolation_refuses_without_full_isolation",), "require_isolation never refuses"),
    # issue 20: forced final answer, PUCT visits and the paper preset, denoising reward, AHC CPUs
    M("forced_answer", "tttd/loop.py", "forced_answer=cfg.forced_answer,", "forced_answer=False,",
      (W25 + "test_forced_answer_reaches_the_sampler",), "loop never asks for a forced answer"),
    M("forced_answer (hf)", "tttd/policy/engines/hf.py", "        if params.forced_answer:\n            out = policy.force_answers(",
      "        if False:\n            out = policy.force_answers(",
      ("tests/policy/test_forced_answer.py::test_hf_engine_forced_answer_with_analysis_and_final_channels",),
      "hf engine never forces the answer"),
    M("forced_answer (tinker)", "tttd/policy/tinker.py", "        if params.forced_answer:\n            out = self._force_answers(",
      "        if False:\n            out = self._force_answers(",
      ("tests/policy/test_forced_answer.py::test_tinker_backend_continues_with_a_second_request",),
      "tinker backend never forces the answer"),
    M("paper preset: visit_counting", "tttd/config.py", 'visit_counting="rollout", forced_answer=True,',
      "forced_answer=True,", ("tests/test_archive.py::test_paper_preset_counts_visits_per_rollout_and_default_per_group",),
      "paper preset counts visits per group"),
    M("paper preset: forced_answer", "tttd/config.py", 'visit_counting="rollout", forced_answer=True,',
      'visit_counting="rollout",', (W25 + "test_the_paper_preset_forces_the_answer",),
      "paper preset leaves the forced answer off"),
    M("denoising reward=inverse_mse", "tttd/tasks/denoising/task.py",
      'if self.reward_kind == "inverse_mse":  # the authors', "if False:  # the authors",
      ("tests/tasks/denoising/test_task.py::test_inverse_mse_reward_as_the_authors_value_stays_mse_norm",),
      "denoising always rewards the value"),
    M("denoising paper preset reward", "tttd/tasks/denoising/task.py", ', "reward": "inverse_mse"}', "}",
      (W25 + "test_denoising_paper_preset_trains_on_inverse_mse",), "paper preset keeps reward=value"),
    M("cpus_per_eval (ahc cases)", "tttd/tasks/ahc/tasks.py", "self.case_cpus = int(cpus_per_eval or 1)",
      "self.case_cpus = 1",
      ("tests/tasks/ahc/test_loop.py::test_ahc_statements_carry_no_result_derived_hints_and_paper_preset_gives_cases_2_cpus",),
      "AHC ignores the CPUs per case"),
    # issue 22: imported folders
    M("metric (folder)", "tttd/evolve/task.py", "self.metric = str(metric) if metric else None", "self.metric = None",
      (FOLD + "test_metric_choice_default_fallback_and_declared_option",), "metric= ignored"),
    M("cascade (folder option)", "tttd/evolve/task.py",
      'self.cascade = s.cascade if cascade is None else _bool(cascade, "cascade")', "self.cascade = s.cascade",
      (FOLD + "test_cascade_stops_below_threshold_and_merges_above",), "cascade= ignored"),
    M("cascade_thresholds (config)", "tttd/evolve/settings.py", "s.thresholds = [float(x) for x in th]", "pass",
      (FOLD + "test_cascade_stops_below_threshold_and_merges_above",
       "tests/evolve/test_settings.py::test_openevolve_config_maps_timeout_cascade_sampling_and_reports_the_rest"),
      "config's thresholds ignored"),
    M("cascade thresholds (driver)", "tttd/evolve/jail/driver.py", "if score is None or score < thresholds[n - 2]:",
      "if score is None:", (FOLD + "test_cascade_stops_below_threshold_and_merges_above",),
      "cascade never stops below a threshold"),
    M("rescore", "tttd/evolve/task.py",
      "self.rescorer = Rescorer(int(rescore), int(rescore_top)) if int(rescore) > 1 else None",
      "self.rescorer = None", (FOLD + "test_noisy_evaluator_is_rescored_and_the_mean_kept",), "rescore= ignored"),
    M("rescore_top", "tttd/evolve/rescore.py", "            if len(self._means) < self.top:\n",
      "            if True:\n", (FOLD + "test_noisy_evaluator_is_rescored_and_the_mean_kept",),
      "every candidate is re-scored"),
    M("evaluator timeout (config)", "tttd/evolve/settings.py",
      "        if t:\n            s.timeout_s = t\n            s.use(\"evaluator.timeout\"",
      "        if False:\n            s.timeout_s = t\n            s.use(\"evaluator.timeout\"",
      (FOLD + "test_timeout_comes_from_the_config",), "config's evaluator.timeout ignored"),
    M("timeout_s (folder option)", "tttd/evolve/task.py",
      "self.per_stage_s = float(timeout_s) if timeout_s is not None else float(s.timeout_s or 300.0)",
      "self.per_stage_s = float(s.timeout_s or 300.0)", (W25 + "test_folder_timeout_option_overrides_the_config",),
      "timeout_s= ignored"),
    M("edits=diff (program task)", "tttd/program_task.py", 'if self.edits == "diff" and parent_code:', "if False:",
      ("tests/test_edits.py::test_program_task_diff_mode_prompt_parse_and_notes_in_the_next_prompt",),
      "program task parses every answer as a whole program"),
    M("edits=diff (program prompt)", "tttd/program_task.py", 'if self.edits == "diff" and code else', "if False else",
      ("tests/test_edits.py::test_program_task_diff_mode_prompt_parse_and_notes_in_the_next_prompt",),
      "program task never asks for diffs"),
    M("edits=diff (ahc)", "tttd/tasks/ahc/tasks.py", 'if self.edits == "diff" and parent:', "if False:",
      ("tests/test_edits.py::test_ahc_task_takes_diff_answers",), "AHC parses every answer as a whole program"),
    M("edits (folder)", "tttd/evolve/task.py", 'edits = edits or s.edits or "whole"', 'edits = "whole"',
      (W25 + "test_folder_edits_follow_the_option_and_the_config",), "folder edits option and config ignored"),
    # issue 23: the scorer-error stop
    M("scorer-error stop limit", "tttd/task_errors.py", "        if self.count >= self.limit:\n",
      "        if False:\n", ("tests/test_first_hour_cli.py::test_scorer_raising_during_a_run_stops_it_with_one_line",),
      "run never stops on scorer errors"),
    # issue 26: speed-kit timing keys and task options
    M("warm_each", "tttd/tasks/speed/harness.py", 'if config.get("warm_each", True):', "if True:",
      ("tests/tasks/test_speed_kit.py::test_every_benchmark_shape_gets_an_untimed_call_first",),
      "warm_each=False ignored"),
    M("warm_each (default on)", "tttd/tasks/speed/harness.py", 'if config.get("warm_each", True):', "if False:",
      ("tests/tasks/test_speed_kit.py::test_every_benchmark_shape_gets_an_untimed_call_first",),
      "no benchmark shape gets its untimed call"),
    M("fixed_seeds (test seeds)", "tttd/tasks/speed/__init__.py", 'int(c["seed"]) if spec.fixed_test_seeds else',
      'int(c["seed"]) if False else',
      ("tests/tasks/test_trimul.py::test_the_tests_are_the_contests_eighteen_and_their_seeds_are_opt_in",
       "tests/tasks/test_mla_decode.py::test_contest_shape_of_the_task"), "fixed seeds never used"),
    M("fixed_seeds (trimul)", "tttd/tasks/speed/trimul/__init__.py", "fixed_test_seeds=bool(fixed_seeds),",
      "fixed_test_seeds=False,",
      ("tests/tasks/test_trimul.py::test_the_tests_are_the_contests_eighteen_and_their_seeds_are_opt_in",),
      "trimul ignores fixed_seeds"),
    M("fixed_seeds (mla_decode)", "tttd/tasks/speed/mla_decode/__init__.py", "fixed_test_seeds=bool(fixed_seeds),",
      "fixed_test_seeds=False,", ("tests/tasks/test_mla_decode.py::test_contest_shape_of_the_task",),
      "mla_decode ignores fixed_seeds"),
]

OBJ = "tests/test_objectives.py::"
MF = "tests/test_multifile.py::"
# issue 37: several objectives (--rule, --reuse pareto, metrics) and programs of several files
MULTI = [
    M("rule (loop)", "tttd/loop.py", "self.task.use_rule(cfg.rule)", "pass",
      (OBJ + "test_a_rule_makes_the_reward_and_the_run_keeps_the_front",), "the run ignores --rule"),
    M("rule (flag)", "tttd/cli/run.py", "reuse=args.reuse, rule=args.rule,", "reuse=args.reuse,",
      (CS + "test_every_run_flag_reaches_the_config",), "--rule never reaches the config"),
    M("rule (task)", "tttd/task.py", "        if ev.valid and self.rule is not None:\n",
      "        if False:\n", (OBJ + "test_a_constraint_makes_breaking_samples_invalid",), "samples keep the primary value"),
    M("reuse=pareto", "tttd/archive.py", '((~self._front(),) if self.reuse == "pareto" else ())', "()",
      (OBJ + "test_pareto_reuse_draws_from_the_front_first",), "pareto reuse walks by PUCT only"),
    M("front kept by flush", "tttd/archive.py", "        keep |= on_front\n", "\n",
      (OBJ + "test_archive_keeps_the_front_beyond_top_k_and_persists_it",), "the front is evicted by top-k"),
    M("directions (loop)", "tttd/loop.py", "directions=self.task.metric_directions())", "directions=None)",
      (OBJ + "test_a_rule_makes_the_reward_and_the_run_keeps_the_front",), "the run keeps no front"),
    M("metrics (folder)", "tttd/evolve/task.py", "self.metric_specs = folder_metrics(metrics, self.metric)",
      "self.metric_specs = ()", (MF + "test_an_openevolve_folder_whose_program_is_a_directory_runs_unchanged",),
      "metrics=... of a folder ignored"),
    M("readonly", "tttd/multifile.py", "        if path in readonly:\n", "        if False:\n",
      ("tests/sandbox/test_multifile_hostile.py::test_a_hostile_answer_is_an_invalid_sample_and_writes_nothing",),
      "read-only files may change"),
    M("new-task --files", "tttd/cli/new_task.py", "    if files:\n        from tttd.cli.new_task_files",
      "    if False:\n        from tttd.cli.new_task_files",
      (MF + "test_new_task_files_writes_a_multi_file_template_that_checks_and_verifies",), "--files writes one file"),
]

RACE = "tests/test_racing.py::"
AR = "tests/tasks/ahc/test_runner.py::"
RACING = [
    # issue 35: racing with a sequential test (task options race, race_alpha; tttd/racing.py)
    M("race (ahc stages)", "tttd/tasks/ahc/tasks.py", "self.stages = parse_stages(race, len(self.seeds))",
      "self.stages = parse_stages(None, len(self.seeds))",
      (AR + "test_task_reports_a_raced_out_child_with_its_partial_mean",), "race is parsed but every case runs"),
    M("race_alpha (ahc)", "tttd/tasks/ahc/tasks.py", "race_alpha=self.race_alpha, cxx=self.cxx,",
      "race_alpha=0.01, cxx=self.cxx,", (AR + "test_race_alpha_reaches_the_sequential_test",),
      "the task races at the default error rate"),
    M("racing: the candidate's own case order", "tttd/tasks/ahc/runner.py",
      "self.order = case_order(len(cases), source) if racing else list(range(len(cases)))",
      "self.order = list(range(len(cases)))",
      (AR + "test_racing_discards_a_clearly_worse_candidate_after_the_first_stage",), "racing runs cases in index order"),
    M("racing: alpha split over the looks", "tttd/racing.py", "return 1.0 - self.alpha / max(1, self.looks)",
      "return 1.0 - self.alpha", (RACE + "test_without_the_looks_split_the_error_rate_would_be_larger",),
      "every look tests at the full alpha"),
    M("racing: finite-population correction", "tttd/racing.py", "(1.0 - n / n_total))", "1.0)",
      (RACE + "test_the_bound_is_exact_once_every_case_is_seen_and_infinite_before_two",),
      "the bound ignores that the cases are a finite set"),
    M("racing: skewness term", "tttd/racing.py", "(max(0.0, skew) if skew_correction else 0.0)", "0.0",
      (RACE + "test_skewed_differences_exceed_alpha_and_the_skew_correction_narrows_the_excess",),
      "the bound ignores skewed differences"),
]

RS = "tests/test_runstate.py::"
SP = "tests/test_spend.py::"
ISSUE32 = [
    # issue 32: scorer errors carry no signal; spend is the backends' own usage; one run state
    M("scorer-error removal (loop)", "tttd/loop.py", "exclude=scorer_errors([evs])[0])", "exclude=())",
      ("tests/test_first_hour_cli.py::test_a_scorer_error_in_a_constant_group_trains_nothing",),
      "scorer errors stay in their group's advantages"),
    M("scorer-error removal (objective)", "tttd/objective.py", "keep = [i for i in range(len(rewards)) if i not in excluded]",
      "keep = list(range(len(rewards)))", ("tests/test_first_hour_cli.py::test_scorer_error_samples_carry_no_signal",),
      "exclude is ignored when the advantages are computed"),
    M("scorer-error removal (batch)", "tttd/loop.py", "if s.tokens and i not in part.excluded]", "if s.tokens]",
      ("tests/test_first_hour_cli.py::test_a_scorer_error_in_a_constant_group_trains_nothing",),
      "excluded samples still go into the batch"),
    M("usage-based spend (tokens)", "tttd/loop.py", "used, self._usage_mark = usage_delta(self._usage_mark or {}, now), now",
      "used, self._usage_mark = usage_delta(now, now), now",
      (SP + "test_the_ledger_is_the_backends_usage", SP + "test_max_usd_stops_an_api_run"),
      "the ledger never reads the backend's usage"),
    M("usage-based spend (evaluation time)", "tttd/faults.py", "            self._on_result(result, program)\n",
      "            pass\n", ("tests/tasks/ahc/test_loop.py::test_scripted_cpp_answers_through_the_loop",),
      "evaluation CPU-seconds never measured"),
    M("usage-based spend (api tokens counted)", "tttd/policy/api.py",
      'if "prompt_tokens" not in counts or "completion_tokens" not in counts:',
      "if False:", (SP + "test_max_usd_stops_an_api_run",), "a server without usage is counted as 0 tokens"),
    M("run state: the newest record", "tttd/runstate.py", "kept = RunState.from_loop(fresh_archive(), record)",
      "kept = RunState(fresh_archive())",
      (RS + "test_stepping_back_keeps_every_paid_step",
       RS + "test_best_and_spend_survive_a_restart_before_the_first_complete_policy_state"),
      "a resume that steps back forgets paid steps and the best"),
    M("run state: scorer-guard counter", "tttd/loop.py", "guard.count = self.state.scorer_errors",
      "guard.count = 0", (RS + "test_the_scorer_guard_counter_survives_resume",), "the counter restarts on resume"),
]

AS = "tests/test_async_steps.py::"
ST = "tests/test_streaming.py::"
# issue 35: --async-steps K, where it enters, where the loop hands it on, where the pipeline uses it
ISSUE35 = [
    M("--async-steps (flag)", "tttd/cli/run.py", "engine=args.engine, async_steps=args.async_steps,",
      "engine=args.engine,", RUN_FLAGS_TEST, "the flag is parsed but dropped"),
    M("async_steps (loop)", "tttd/loop.py", "self.pipeline = Pipeline(self) if cfg.async_steps else None",
      "self.pipeline = None", (AS + "test_rollouts_record_the_stale_policy_that_sampled_them",),
      "the loop stays synchronous"),
    M("async_steps (how far ahead)", "tttd/async_steps.py", "self.k = int(run.cfg.async_steps)", "self.k = 1",
      (AS + "test_rollouts_record_the_stale_policy_that_sampled_them",), "always one step ahead"),
    M("async_steps (policy version)", "tttd/async_steps.py", "Ahead(s, step - 1, starts,", "Ahead(s, s - 1, starts,",
      (AS + "test_rollouts_record_the_stale_policy_that_sampled_them",), "rollouts claim to be on-policy"),
    M("async_steps (in-flight steps committed)", "tttd/async_steps.py", "extra={INFLIGHT: self.dumps()}",
      "extra=None", (AS + "test_resume_after_a_fault_equals_uninterrupted",), "the steps sampled ahead are not checkpointed"),
    M("async_steps (in-flight steps restored)", "tttd/loop.py",
      "self.pipeline.load(found.step_dir if found is not None else None)", "pass",
      (AS + "test_resume_after_a_fault_equals_uninterrupted",), "resume re-samples the steps in flight"),
    M("async_steps (max_samples)", "tttd/async_steps.py", "if s > step and not self._may_run(step, s):",
      "if False:", (AS + "test_max_samples_stops_and_samples_nothing_beyond",), "steps beyond the cap are sampled"),
    M("async_steps (a parent gone from the archive)", "tttd/loop.py", "if start.id in archive:", "if True:",
      (AS + "test_a_parent_gone_from_the_archive_still_scores_but_adds_no_children",), "a pruned parent's group raises"),
    M("ablate async1", "tttd/ablate/spec.py", '{"async_steps": 1}),', "{}),",
      ("tests/ablate/test_spec.py::test_async_variants_are_asked_for_by_name",), "async1 runs synchronously"),
    M("streaming (verdicts as programs finish)", "tttd/streaming.py", "return_when=cf.FIRST_COMPLETED",
      "return_when=cf.ALL_COMPLETED", (ST + "test_a_slow_group_holds_back_neither_the_others_verdicts_nor_their_advantages",),
      "every verdict waits for the step's slowest program"),
    M("streaming (archive in group order)", "tttd/loop.py",
      "            child_ids.extend(self._archive_group(step, starts[h], evaluations[h]) for h in order.release())\n"
      "        child_ids.extend(",
      "            if order.left[g] == 0:\n                child_ids.append(self._archive_group(step, starts[g], evaluations[g]))\n"
      "        (", (ST + "test_the_archive_and_the_logs_do_not_depend_on_which_group_is_slow",),
      "groups join the archive in completion order"),
]

MUTATIONS: list[M] = LOOP + COMPONENTS + TRAINER + TINKER + ENTRY + NEW_SWITCHES + ISSUE32 + MULTI + RACING + ISSUE35
