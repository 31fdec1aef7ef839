"""The marketplace's tables: people, vehicles and offers, leads, deals and commissions."""

from marketplace.models.deals import Commission, Deal, Lead
from marketplace.models.people import Profile, Role
from marketplace.models.vehicles import Offer, Vehicle

__all__ = ("Commission", "Deal", "Lead", "Offer", "Profile", "Role", "Vehicle")
