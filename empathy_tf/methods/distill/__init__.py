"""Knowledge distillation with teacher annealing: loss, λ schedule, teachers and the method."""
