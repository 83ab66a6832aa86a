"""Training machinery: the loop, optimiser and schedule, mixed precision, several processes, checkpoints, logging
and validation. The loss itself is :class:`unsup3d.losses.Objective`'s; only the command line imports this
package (inference never does)."""
