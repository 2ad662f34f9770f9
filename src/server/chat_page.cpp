#include "server/chat_page.h"

namespace toy::server {

// Plain HTML, CSS and JavaScript, no external resources (the page must work
// offline). The conversation lives in the page; each send posts the whole
// message list with stream: true and appends the deltas as they arrive.
std::string_view chat_page_html() {
  static constexpr std::string_view kPage = R"HTML(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>toy chat</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; background: #f4f4f5; color: #18181b; }
  main { max-width: 52rem; margin: 0 auto; padding: 1rem; display: flex; flex-direction: column;
         height: 100vh; box-sizing: border-box; }
  header { display: flex; gap: .75rem; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 1.2rem; margin: 0; }
  header small { color: #71717a; }
  #log { flex: 1; overflow-y: auto; margin: .75rem 0; display: flex; flex-direction: column;
         gap: .5rem; }
  .msg { padding: .6rem .8rem; border-radius: .5rem; white-space: pre-wrap; max-width: 85%; }
  .user { background: #2563eb; color: white; align-self: flex-end; }
  .assistant { background: white; border: 1px solid #e4e4e7; align-self: flex-start; }
  .error { background: #fee2e2; color: #991b1b; align-self: stretch; }
  form { display: flex; gap: .5rem; }
  textarea { flex: 1; font: inherit; padding: .5rem; border-radius: .4rem; border: 1px solid #d4d4d8;
             resize: vertical; min-height: 2.5rem; }
  button { font: inherit; padding: .5rem 1rem; border-radius: .4rem; border: 0; background: #18181b;
           color: white; cursor: pointer; }
  button:disabled { opacity: .5; cursor: default; }
  details { font-size: .9rem; color: #52525b; }
  details input { font: inherit; width: 6rem; }
</style>
</head>
<body>
<main>
  <header><h1>toy chat</h1><small id="model">connecting...</small></header>
  <details><summary>settings</summary>
    <label>system <input id="system" style="width:20rem" placeholder="(none)"></label>
    <label>temperature <input id="temperature" type="number" step="0.1" min="0" max="2" value="0.8"></label>
    <label>max tokens <input id="max_tokens" type="number" min="1" value="256"></label>
    <label>API key <input id="key" type="password" placeholder="(none)"></label>
    <button type="button" id="clear">clear</button>
  </details>
  <div id="log"></div>
  <form id="form">
    <textarea id="input" placeholder="Type a message (Enter sends, Shift+Enter: new line)"></textarea>
    <button id="send">Send</button><button type="button" id="stop" disabled>Stop</button>
  </form>
</main>
<script>
const $ = (id) => document.getElementById(id);
const messages = [];
let controller = null;
$('key').value = localStorage.getItem('toy-api-key') || '';
$('key').onchange = () => localStorage.setItem('toy-api-key', $('key').value);
const headers = () => {
  const h = {'Content-Type': 'application/json'};
  if ($('key').value) h['Authorization'] = 'Bearer ' + $('key').value;
  return h;
};
fetch('/v1/models', {headers: headers()}).then(r => r.json()).then(j => {
  $('model').textContent = j.data ? j.data[0].id : (j.error ? j.error.message : '');
}).catch(e => { $('model').textContent = String(e); });

function bubble(cls, text) {
  const div = document.createElement('div');
  div.className = 'msg ' + cls;
  div.textContent = text;
  $('log').appendChild(div);
  $('log').scrollTop = $('log').scrollHeight;
  return div;
}

async function send(text) {
  messages.push({role: 'user', content: text});
  bubble('user', text);
  const out = bubble('assistant', '');
  out.dataset.done = 'false';
  const body = {messages: [], stream: true,
                temperature: parseFloat($('temperature').value),
                max_tokens: parseInt($('max_tokens').value, 10)};
  if ($('system').value) body.messages.push({role: 'system', content: $('system').value});
  body.messages.push(...messages);
  controller = new AbortController();
  $('send').disabled = true; $('stop').disabled = false;
  let reply = '';
  try {
    const res = await fetch('/v1/chat/completions', {method: 'POST', headers: headers(),
                            body: JSON.stringify(body), signal: controller.signal});
    if (!res.ok) {
      const j = await res.json().catch(() => ({}));
      throw new Error((j.error && j.error.message) || res.statusText);
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, {stream: true});
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        for (const line of event.split('\n')) {
          if (!line.startsWith('data: ')) continue;
          const data = line.slice(6);
          if (data === '[DONE]') continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          const delta = chunk.choices.length ? chunk.choices[0].delta : {};
          if (delta.content) {
            reply += delta.content;
            out.textContent = reply;
            out.dataset.chunks = String(Number(out.dataset.chunks || 0) + 1);
          }
          $('log').scrollTop = $('log').scrollHeight;
        }
      }
    }
  } catch (e) {
    if (e.name !== 'AbortError') bubble('error', String(e.message || e));
  }
  messages.push({role: 'assistant', content: reply});
  out.dataset.done = 'true';
  controller = null;
  $('send').disabled = false; $('stop').disabled = true;
}

$('form').onsubmit = (e) => {
  e.preventDefault();
  const text = $('input').value.trim();
  if (!text || controller) return;
  $('input').value = '';
  send(text);
};
$('input').onkeydown = (e) => {
  if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('form').requestSubmit(); }
};
$('stop').onclick = () => { if (controller) controller.abort(); };
$('clear').onclick = () => { messages.length = 0; $('log').textContent = ''; };
</script>
</body>
</html>
)HTML";
  return kPage;
}

}  // namespace toy::server
