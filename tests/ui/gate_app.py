"""A minimal app around ui.auth_gate for AppTest."""
import streamlit as st

from ui.auth_gate import logout_button, require_role, require_user

user = require_user()
st.markdown(f"Hello {user.username} ({user.role})")
logout_button()
if st.session_state.get("want_admin"):
    require_role("admin")
    st.markdown("admin area")
