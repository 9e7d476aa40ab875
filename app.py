"""Clinical ML Studio: page config, login gate, per-role navigation, status banner.

Run: streamlit run app.py. The page list is built for the user's role on every run: a
page the role may not open is never passed to st.navigation, so it cannot run, even by
URL; each restricted page checks the role again at its top.
"""
from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="Clinical ML Studio", page_icon="🩺", layout="wide")

from core.auth import can_access  # noqa: E402 - set_page_config must come first
from ui import state  # noqa: E402
from ui.auth_gate import logout_button, require_user  # noqa: E402
from ui.banner import service_banner  # noqa: E402
from ui.errors import show_error  # noqa: E402

# (page key in core.auth.PAGE_ROLES, file, title, icon, navigation section)
PAGES = (
    ("iris", "pages/iris.py", "Iris species", "🌸", "Predict"),
    ("cancer", "pages/cancer.py", "Breast cancer", "🎗️", "Predict"),
    ("diagnostics", "pages/diagnostics.py", "Diagnostics", "🔬", "Analyse"),
    ("model_ops", "pages/model_ops.py", "Model operations", "⚙️", "Admin"),
    ("users", "pages/users.py", "Users", "👥", "Admin"),
    ("audit", "pages/audit.py", "Audit trail", "📜", "Admin"),
)

state.warm_up()  # loads champions and starts missing trainings in the background, before anyone logs in



def _logged_out() -> None:
    """The only page while nobody is logged in (the form above it is the whole page)."""


user = require_user(stop=False)  # draws the login form while nobody is logged in
if user is None:
    # Replace the previous user's page list (the browser keeps the last one it was sent).
    st.navigation([st.Page(_logged_out, title="Log in", url_path="login")], position="hidden")
    st.stop()

sections: dict[str, list[st.Page]] = {}
for key, path, title, icon, section in PAGES:
    if can_access(user.role, key):
        sections.setdefault(section, []).append(st.Page(path, title=title, icon=icon, url_path=key))
page = st.navigation(sections)

with st.sidebar:
    st.markdown(f"**{user.name}**")
    st.caption(f"Signed in as `{user.username}` · role **{user.role}**")
    logout_button()

try:
    service_banner(show_errors=user.role == "admin")
except Exception as error:  # noqa: BLE001 - a broken store shows one message, the page still draws
    show_error(error, action="Model service")
page.run()
