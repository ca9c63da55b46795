/**
 * MLflow's own UI in a lab tab, without MLflow's Assistant.
 *
 * MLflow 3.17's UI opens its Assistant panel by itself the first time it loads on a local host
 * name (localhost, 127.0.0.1: the usual lab), and remembers whether the panel is open in the
 * origin's local storage, which the lab shares with the UI it serves through its proxy. The
 * assistant runs coding agents on the tracking server's host and is never available through the
 * proxy (which answers the UI's "is an assistant set up?" calls with "none"), so the lab's tab
 * keeps the panel closed and hides the assistant's buttons (MLflow marks all of them, and the
 * panel, with `data-assistant-ui="true"`).
 */

/** MLflow's local-storage entries (`<key>_v<version>`, JSON) that keep the panel closed. */
export const ASSISTANT_CLOSED: Readonly<Record<string, string>> = {
  'mlflow.assistant.panelOpen_v1': 'false',
  'mlflow.assistant.fab.autoOpenedOnFirstLoad_v1': 'true'
};

export const HIDE_ASSISTANT_CSS = '[data-assistant-ui="true"] { display: none !important; }';
const STYLE_ID = 'infinstor-hide-mlflow-assistant';

/** Before the UI loads: its Assistant panel starts closed and does not open by itself. */
export function keepAssistantClosed(storage: Storage): void {
  for (const [key, value] of Object.entries(ASSISTANT_CLOSED)) {
    try {
      storage.setItem(key, value);
    } catch {
      // Storage full or disabled: the UI then shows its panel; nothing else breaks.
    }
  }
}

/** Hide the assistant's buttons and panel in the UI's document (same origin as the lab). */
export function hideAssistant(doc: Document | null): void {
  if (!doc || !doc.head || doc.getElementById(STYLE_ID)) {
    return;
  }
  const style = doc.createElement('style');
  style.id = STYLE_ID;
  style.textContent = HIDE_ASSISTANT_CSS;
  doc.head.appendChild(style);
}

/** Both, for an iframe about to load MLflow's UI (again at every load of the frame). */
export function withoutAssistant(iframe: HTMLIFrameElement, storage: Storage): void {
  keepAssistantClosed(storage);
  const hide = () => {
    try {
      hideAssistant(iframe.contentDocument);
    } catch {
      // Another origin (never the case through the lab's proxy): nothing to do.
    }
  };
  iframe.addEventListener('load', hide);
  hide();
}
