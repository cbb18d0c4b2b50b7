"""Knowledge distillation with teacher annealing (paper §3.2; Clark et al. 2019)."""
