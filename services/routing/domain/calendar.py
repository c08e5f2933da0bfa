"""Working-time arithmetic lives in the kernel (shared.working_time): it is rule-free
calendar math that intake's clock display needs too. Routing's modules import it from here."""

from shared.working_time import WorkingCalendar

__all__ = ["WorkingCalendar"]
