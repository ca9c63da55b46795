import { ASSISTANT_CLOSED, hideAssistant, keepAssistantClosed, withoutAssistant } from '../mlflowUi';

describe("MLflow's UI without its Assistant", () => {
  beforeEach(() => window.localStorage.clear());

  it('keeps the panel closed and never auto-opened, overriding what the UI stored', () => {
    window.localStorage.setItem('mlflow.assistant.panelOpen_v1', 'true');
    keepAssistantClosed(window.localStorage);
    expect(JSON.parse(window.localStorage.getItem('mlflow.assistant.panelOpen_v1')!)).toBe(false);
    expect(JSON.parse(window.localStorage.getItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1')!)).toBe(true);
    expect(Object.keys(ASSISTANT_CLOSED)).toHaveLength(2);
  });

  it('a storage that refuses writes is not an error', () => {
    const full = { setItem: () => { throw new Error('QuotaExceededError'); } } as unknown as Storage;
    expect(() => keepAssistantClosed(full)).not.toThrow();
  });

  it("hides everything MLflow marks as the assistant's, once per document", () => {
    const doc = document.implementation.createHTMLDocument('mlflow');
    doc.body.innerHTML = '<div data-assistant-ui="true"><button>MLflow Assistant</button></div><main>runs</main>';
    hideAssistant(doc);
    hideAssistant(doc);
    const styles = doc.head.querySelectorAll('style');
    expect(styles).toHaveLength(1);
    expect(styles[0].textContent).toContain('[data-assistant-ui="true"]');
    expect(styles[0].textContent).toContain('display: none');
  });

  it('an iframe: storage set before it loads, the style added at each load', () => {
    const iframe = document.createElement('iframe');
    document.body.appendChild(iframe);
    withoutAssistant(iframe, window.localStorage);
    expect(window.localStorage.getItem('mlflow.assistant.panelOpen_v1')).toBe('false');
    const doc = iframe.contentDocument!;
    expect(doc.getElementById('infinstor-hide-mlflow-assistant')).not.toBeNull();
    doc.getElementById('infinstor-hide-mlflow-assistant')!.remove(); // as after a reload
    iframe.dispatchEvent(new Event('load'));
    expect(doc.getElementById('infinstor-hide-mlflow-assistant')).not.toBeNull();
    iframe.remove();
  });
});
