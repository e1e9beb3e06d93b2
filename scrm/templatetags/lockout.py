from django import template

from scrm.lockout import login_locked

register = template.Library()


@register.filter
def locked_out(user) -> bool:
    """On the staff page: whether this login is locked out after wrong passwords."""
    return login_locked(user.get_username())
