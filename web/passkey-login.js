// The login page's "Sign in with a passkey" (src/proxy/pages.ts): usernameless, the
// authenticator offers the passkeys it holds for this site.
import { getPasskey } from './lib/webauthn.js';

const button = document.getElementById('passkey-sign-in');
const error = document.getElementById('passkey-error');

async function post(path, body) {
  const res = await fetch(`/api/v1/passkeys/${path}`, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data?.error?.message ?? `${res.status} ${res.statusText}`);
  return data;
}

function show(message) {
  error.textContent = message;
  error.hidden = false;
}

if (!window.PublicKeyCredential) button.hidden = true;
button.addEventListener('click', async () => {
  error.hidden = true;
  button.disabled = true;
  try {
    const options = await post('login/options');
    const response = await getPasskey(options);
    await post('login', { response });
    location.href = button.dataset.next || '/';
  } catch (e) {
    show(e.name === 'NotAllowedError' ? 'The passkey sign-in was cancelled or timed out.' : `Sign-in refused: ${e.message}`);
  } finally {
    button.disabled = false;
  }
});
