"""Access reviews on a schedule, certification runs and the compliance report."""
