"""Identity and access: users, tokens, access rules, and the decisions made from them."""

from tandem.core.identity.admin import Access, Tokens, Users
from tandem.core.identity.rules import RuleSet, decide, matches
from tandem.core.identity.service import IdentityService

__all__ = ["Access", "IdentityService", "RuleSet", "Tokens", "Users", "decide", "matches"]
