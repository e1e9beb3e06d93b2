"""The demo page served at /__fake__/ui: buttons that call the simulate endpoints."""

UI_HTML = """<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>WeChat sandbox</title>
<style>
body { font-family: sans-serif; margin: 1.5em; max-width: 70em; }
fieldset { margin: 0 0 1em; } label { margin-right: 1em; } input { width: 14em; }
pre { background: #f4f4f4; padding: .6em; max-height: 22em; overflow: auto; }
button { margin: .2em; }
</style>
</head>
<body>
<h2>WeChat sandbox</h2>
<p id="health">…</p>

<fieldset><legend>Official Account follower</legend>
  <label>appid <input id="appid"></label>
  <label>person (p123, empty = new) <input id="person"></label>
  <label>QR scene <input id="scene" value="store_sh001"></label><br>
  <button onclick="mp('subscribe', {})">subscribe</button>
  <button onclick="mp('scan', {scene: val('scene')})">scan QR</button>
  <button onclick="mp('unsubscribe', {})">unsubscribe</button>
  <button onclick="mp('block', {})">block</button>
  <button onclick="mp('set_browser_person', {})">use for OAuth</button>
</fieldset>

<fieldset><legend>WeCom customer</legend>
  <label>corpid <input id="corpid"></label>
  <label>guide userid <input id="userid" value="guide001"></label>
  <label>external_userid <input id="ext"></label>
  <label>contact way config_id <input id="config"></label><br>
  <button onclick="addCustomer()">customer adds guide</button>
  <button onclick="pair('customer_chatted')">customer chats</button>
  <button onclick="pair('member_deletes_customer')">guide deletes customer</button>
  <button onclick="pair('customer_deletes_member')">customer deletes guide</button>
  <button onclick="createGroup()">create group</button>
  <button onclick="work('member_resigns', {userid: val('userid')})">guide resigns</button>
  <button onclick="work('set_browser_member', {userid: val('userid')})">use for OAuth</button>
</fieldset>

<fieldset><legend>Clock and faults</legend>
  <button onclick="post('clock', {advance_s: 21})">+21 s</button>
  <button onclick="post('clock', {advance_s: 7200})">+2 h</button>
  <button onclick="post('clock', {advance_s: 86400})">+1 day</button>
  <button onclick="post('scenario', {name: 'flaky_network', args: {p: 0.2}})">flaky</button>
  <button onclick="del('faults')">clear faults</button>
  <button onclick="get('state?section=work')">state</button>
  <button onclick="get('callbacks')">callbacks</button>
</fieldset>
<pre id="out"></pre>

<script>
const base = location.pathname.replace(/\\/__fake__\\/ui\\/?$/, '') + '/__fake__/';
const out = document.getElementById('out');
const val = id => document.getElementById(id).value.trim();
const show = data => { out.textContent = JSON.stringify(data, null, 2); };
async function call(method, path, body) {
  const init = {method, headers: {'Content-Type': 'application/json'}};
  if (body !== undefined) init.body = JSON.stringify(body);
  const data = await (await fetch(base + path, init)).json();
  show(data);
  return data;
}
const get = p => call('GET', p);
const post = (p, b) => call('POST', p, b);
const del = p => call('DELETE', p);
function who() { const p = val('person'); return p ? {person: p} : {}; }
function mp(action, body) {
  return post(`mp/${val('appid')}/simulate/${action}`, {...who(), ...body});
}
function work(action, body) { return post(`work/${val('corpid')}/simulate/${action}`, body); }
function pair(action) {
  return work(action, {userid: val('userid'), external_userid: val('ext')});
}
function addCustomer() {
  const body = {userid: val('userid'), ...who()};
  if (val('config')) body.config_id = val('config');
  return work('add_customer', body);
}
function createGroup() {
  const members = val('ext') ? [val('ext')] : [];
  return work('groupchat', {action: 'create', owner: val('userid'), name: '体验群', members});
}
get('health').then(h => {
  document.getElementById('health').textContent = `seed ${h.seed}, sandbox time ${h.now}`;
  document.getElementById('appid').value = h.mp_apps[0] || '';
  document.getElementById('corpid').value = h.corps[0] || '';
});
</script>
</body>
</html>
"""
