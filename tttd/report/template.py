"""The report's one HTML template (jinja2, autoescaped: candidate text cannot inject markup)."""

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
img { max-width: 100%; display: block; margin: .5em 0; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: .8em; overflow: auto; max-height: 32em; font-size: .85em; }
code { background: #f3f3f3; padding: 0 .25em; }
.note { color: #666; font-size: .9em; }
.warn { color: #a40; }
.kv td:first-child { font-weight: 600; white-space: nowrap; }
details.ex { margin: .3em 0; } details.ex summary { cursor: pointer; } details.ex pre { max-height: 16em; }
</style></head><body>
<h1>{{ title }}</h1>
<p class="note">Generated {{ generated }} by tttd {{ version }} from the run director{{ 'ies' if runs|length > 1 else 'y' }} alone.
Images are embedded; PNG copies sit next to this file.</p>
{% if runs|length > 1 %}
<h2>Comparison</h2>
<table><tr>{% for h in compare_header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in compare_rows %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table>
{% for img in compare_images %}<img alt="{{ img.alt }}" src="data:image/png;base64,{{ img.data }}">{% endfor %}
{% endif %}
{% for r in runs %}
<h2 id="run{{ loop.index }}">{{ r.label }}</h2>
<table class="kv">{% for k, v in r.summary %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</table>
{% if r.stop_reason %}<p class="warn">Stopped by a budget cap: {{ r.stop_reason }}. To go on: <code>{{ r.stop_command }}</code>.</p>{% endif %}
{% if not r.has_steps %}<p class="warn">No completed step yet (a run that has just started, or one that crashed before its first checkpoint).</p>{% endif %}
{% for img in r.images %}<h3>{{ img.title }}</h3><img alt="{{ img.alt }}" src="data:image/png;base64,{{ img.data }}">
{% if r.captions.get(img.key) %}<p class="note">{{ r.captions[img.key] }}</p>{% endif %}
{% if img.key == "validity" and r.messages %}
<table><tr><th>status</th><th>count</th><th>most common failure messages</th></tr>
{% for status, count, message in r.messages %}<tr><td>{{ status }}</td><td>{{ count }}</td><td>{{ message }}</td></tr>{% endfor %}</table>
{% endif %}{% endfor %}
<h3>Example completions</h3>
{% if r.examples %}<p class="note">Per step: the best completion and the first completion of each kind of failure
(the model's text, escaped). The first thing to read when every sample fails.</p>
{% for ex in r.examples %}<details class="ex"{% if loop.first %} open{% endif %}><summary>step {{ ex.step }}: {{ ex.head }}</summary>
{% if ex.best %}<p><b>best of the step</b> (value {{ ex.best.value_text }}, {{ ex.best.tokens }} tokens{% if ex.best.cut %}, cut{% endif %})</p><pre>{{ ex.best.text }}</pre>{% endif %}
{% for f in ex.failures %}<p><b class="{{ 'warn' if f.status == 'scorer_error' else '' }}">{{ f.status }}</b> ({{ f.count }} in this step{% if f.status == 'scorer_error' %}: a bug in the task's scorer, not the candidate{% endif %}): {{ f.message }}</p><pre>{{ f.text }}</pre>{% endfor %}
</details>{% endfor %}
{% else %}<p class="note">No completed step yet.</p>{% endif %}
{% if r.front %}<h3>Pareto front</h3>
<p class="note">{{ r.front.size }} archived state{{ 's' if r.front.size != 1 else '' }} that no other state beats on every one of the {{ r.front.metrics }} metrics
(the value column is the run's rule).</p>
{% if r.front.image %}<img alt="Pareto front" src="data:image/png;base64,{{ r.front.image }}">{% endif %}
<table><tr>{% for h in r.front.header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in r.front.rows %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table>
{% endif %}
{% if r.diffs %}<h3>Files changed per state</h3>
<p class="note">Each archived state of a multi-file program: the files it changed against its parent (unified diff).</p>
{% for d in r.diffs %}<details class="ex"><summary>{{ d.id }} (step {{ d.step }}, value {{ d.value }}): {{ d.summary }}</summary><pre>{{ d.diff }}</pre></details>{% endfor %}
{% endif %}
<h3>Best solution</h3>
{% if r.best %}
<table class="kv"><tr><td>value</td><td>{{ r.best.value }}</td></tr><tr><td>found in step</td><td>{{ r.best.step }}{% if r.best.step == 0 %} (an initial state){% endif %}</td></tr>
<tr><td>verifier says</td><td>{{ r.best.message }}</td></tr></table>
{% if r.drawing %}<img alt="drawing of the best construction" src="data:image/png;base64,{{ r.drawing }}">{% else %}<p class="note">{{ r.drawing_note }}</p>{% endif %}
<p>Re-verify it (the trusted verifier recomputes the score): {% if r.best.verify %}<code>{{ r.best.verify }}</code>{% else %}no file to verify{% endif %}</p>
{% if r.audit %}<h3>Audit</h3><p class="note">tttd audit: the best and the top candidates re-verified in fresh processes with fresh seeds.</p>
<table><tr><th>candidate</th><th>recorded</th><th>now</th><th>verdict</th><th>static flags</th><th>message</th></tr>
{% for row in r.audit %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
{% if r.code %}<p>Its program:</p><pre>{{ r.code }}</pre>{% endif %}
{% if r.construction %}<p>Its construction (JSON{% if r.construction_cut %}, first {{ r.construction|length }} characters{% endif %}):</p><pre>{{ r.construction }}</pre>{% endif %}
{% else %}<p class="note">No best solution recorded yet.</p>{% endif %}
<details><summary>Configuration</summary><pre>{{ r.config }}</pre></details>
{% endfor %}
</body></html>
"""
