"""User management (admin): add users, change roles, reset passwords, disable and enable."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.auth import ROLES, generate_password, users_summary
from ui import state
from ui.auth_gate import require_page
from ui.errors import user_errors

FLASH_KEY = "users_flash"

me = require_page("users")

st.title("👥 Users")

if FLASH_KEY in st.session_state:
    kind, message = st.session_state.pop(FLASH_KEY)
    (st.success if kind == "ok" else st.info)(message)


def _flash(message: str, kind: str = "ok") -> None:
    st.session_state[FLASH_KEY] = (kind, message)
    st.rerun()


users = []
with user_errors("Reading users"):
    users = state.user_store().list_users()
if users:
    frame = pd.DataFrame(users_summary(users))
    st.dataframe(frame, hide_index=True, key="users_table")
usernames = [u.username for u in users]

add_tab, role_tab, password_tab, access_tab = st.tabs(["Add", "Change role", "Reset password", "Disable / enable"])

with add_tab:
    with st.form("users_add", clear_on_submit=True):
        username = st.text_input("Username", help="Lower case letters, digits and _ . @ -")
        name = st.text_input("Full name")
        email = st.text_input("Email (optional)")
        role = st.selectbox("Role", ROLES, index=ROLES.index("clinician"))
        password = st.text_input("Password (leave empty to generate one)", type="password")
        if st.form_submit_button("Add user"):
            with user_errors("Add user"):
                chosen = password or generate_password()
                user = state.user_store().create_user(username, chosen, role, name=name or None, email=email or None)
                if password:
                    _flash(f"Added {user.username} ({user.role}).")
                else:
                    _flash(f"Added {user.username} ({user.role}). Generated password, shown once: `{chosen}`", kind="info")

with role_tab:
    if usernames:
        with st.form("users_role"):
            who = st.selectbox("User", usernames, key="users_role_user")
            new_role = st.selectbox("New role", ROLES, key="users_role_role")
            if st.form_submit_button("Change role"):
                with user_errors("Change role"):
                    user = state.user_store().set_role(who, new_role)
                    _flash(f"{user.username} is now {user.role}.")

with password_tab:
    if usernames:
        with st.form("users_password", clear_on_submit=True):
            who = st.selectbox("User", usernames, key="users_password_user")
            new_password = st.text_input("New password (leave empty to generate one)", type="password")
            st.caption("Resetting a password also signs the user out everywhere.")
            if st.form_submit_button("Reset password"):
                with user_errors("Reset password"):
                    chosen = new_password or generate_password()
                    user = state.user_store().reset_password(who, chosen)
                    if new_password:
                        _flash(f"Password of {user.username} reset; their sessions ended.")
                    else:
                        _flash(f"Password of {user.username} reset; their sessions ended. New password, shown once: `{chosen}`", kind="info")

with access_tab:
    if usernames:
        with st.form("users_access"):
            who = st.selectbox("User", usernames, key="users_access_user")
            left, right = st.columns(2)
            disable = left.form_submit_button("Disable")
            enable = right.form_submit_button("Enable")
            if disable or enable:
                with user_errors("Disable" if disable else "Enable"):
                    if disable:
                        if who == me.username:
                            st.warning("You cannot disable yourself.")
                        else:
                            user = state.user_store().disable(who)
                            _flash(f"{user.username} is disabled and signed out everywhere.")
                    else:
                        user = state.user_store().enable(who)
                        _flash(f"{user.username} is enabled.")
