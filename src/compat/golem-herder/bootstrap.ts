/**
 * The script a document includes (`<script src="…/golem/v1/">`). In a person's browser it asks
 * the herder to spawn the golem for the document; in the golem (headless Chromium: its user
 * agent says "Headless") it runs the code of the `.golem,#emet` element once the document has
 * loaded. The document id is the script tag's `data-golem-id`, else webstrate.webstrateId,
 * else the last segment of the page's path. `window.golemHerder` tells golem code where the
 * herder is: `{ base, id, token }`.
 */
export function bootstrapScript(base: string, token: string | undefined): string {
  return `/* golem-herder bootstrap (served by corral) */
(function () {
  var base = ${JSON.stringify(base)};
  var token = ${JSON.stringify(token ?? null)};
  var script = document.currentScript;
  function documentId() {
    if (script && script.dataset && script.dataset.golemId) return script.dataset.golemId;
    if (window.webstrate && window.webstrate.webstrateId) return window.webstrate.webstrateId;
    var parts = location.pathname.split('/').filter(Boolean);
    return parts.length ? decodeURIComponent(parts[parts.length - 1]) : '';
  }
  function withToken(url) {
    return token ? url + (url.indexOf('?') < 0 ? '?' : '&') + 'token=' + encodeURIComponent(token) : url;
  }
  var id = documentId();
  window.golemHerder = { base: base, id: id, token: token, url: withToken };
  if (!/headless/i.test(navigator.userAgent)) {
    // A person's browser: ask for this document's golem (a second request is harmless).
    var spawn = new XMLHttpRequest();
    spawn.onreadystatechange = function () {
      if (spawn.readyState !== XMLHttpRequest.DONE) return;
      if (spawn.status === 200) console.log('Golem spawned for ' + id);
      else console.warn('Golem could not be spawned - ' + spawn.responseText);
    };
    spawn.open('GET', withToken(base + '/golem/v1/spawn/' + encodeURIComponent(id)), true);
    spawn.send();
    return;
  }
  // The golem: bootstrap with the document's golem code. Rise!
  function rise() {
    var el = document.querySelector('.golem,#emet');
    if (el) new Function(el.textContent)();
  }
  if (window.webstrate && typeof window.webstrate.on === 'function') window.webstrate.on('loaded', rise);
  else if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', rise);
  else rise();
})();
`;
}
