"""Streamlit-side helpers shared by app.py and the pages (login gate, state, errors).

Data flows pages -> ui -> core; core never imports streamlit.
"""
