// Behaviour the views share: polling while the page is visible, redrawn parts, error and "not
// available" messages, forms and buttons that show they are busy while their request runs, and
// listings read one page at a time.

import { get } from "./api.js";
import { el, message, replace, table } from "./dom.js";

const PAGE_SIZE = 50;

/**
 * Runs `task` every `ms` while the tab is visible and the view is shown (until `signal` aborts);
 * a slow answer is never overtaken by the next poll.
 */
export function every(ms, task, signal) {
  if (signal.aborted) {
    return; // the operator left while the first load ran
  }
  let running = false;
  const timer = setInterval(async () => {
    if (running || document.visibilityState !== "visible") {
      return;
    }
    running = true;
    try {
      await task();
    } finally {
      running = false;
    }
  }, ms);
  signal.addEventListener("abort", () => clearInterval(timer));
}

/**
 * For parts of a view that are drawn again (a new range, a new month): each call gives a signal
 * that aborts when the part is drawn again or the view is left (charts destroy themselves on it).
 */
export function redraws(viewSignal) {
  let current = null;
  viewSignal.addEventListener("abort", () => current?.abort());
  return () => {
    current?.abort();
    current = new AbortController();
    return current.signal;
  };
}

/** An error as the operator reads it (the API's message, or what went wrong in the browser). */
export function failure(error) {
  return message("error", error instanceof Error ? error.message : String(error));
}

export function notAvailable(what) {
  return message("info", `${what}: not available on this deployment yet.`);
}

export function loading() {
  return message("info", "Loading…");
}

/** Shows `render()`'s nodes in `slot`, or the error it threw. */
export async function fill(slot, render) {
  replace(slot, loading());
  try {
    replace(slot, await render());
  } catch (error) {
    replace(slot, failure(error));
  }
}

/**
 * A form whose submit runs `action(formData)`; the submit button is disabled while it runs and
 * the outcome (its text, or the error) is shown under the form.
 */
export function actionForm(attrs, fields, submitLabel, action) {
  const outcome = el("div", { class: "outcome", "aria-live": "polite" });
  const submit = el("button", { type: "submit" }, submitLabel);
  const form = el("form", { class: "action", ...attrs }, fields, submit, outcome);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    replace(outcome);
    try {
      const said = await action(new FormData(form), form);
      if (said) {
        replace(outcome, said instanceof Node ? said : message("ok", said));
      }
    } catch (error) {
      replace(outcome, failure(error));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

/** A button that runs `action()` once at a time, showing its error next to it. */
export function actionButton(label, action) {
  const button = el("button", { type: "button" }, label);
  const outcome = el("span", { class: "outcome", "aria-live": "polite" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    replace(outcome);
    try {
      const said = await action();
      if (said) {
        replace(outcome, message("ok", said));
      }
    } catch (error) {
      replace(outcome, failure(error));
    } finally {
      button.disabled = false;
    }
  });
  return el("span", { class: "action-button" }, button, outcome);
}

/** "Showing the first N" when a listing was cut at the page cap. */
export function partial(listing) {
  return listing.complete ? null : message("info", `Showing the first ${listing.items.length}: there are more.`);
}

/**
 * A listing shown one page at a time, with "More" following the API's `next` cursor; a new
 * table is drawn with all rows read so far (rows are few per page, so redrawing is cheap).
 */
export function pagedTable(route, query, columns, options = {}) {
  const rows = [];
  const slot = el("div");
  const more = el("button", { type: "button", class: "more", hidden: true }, "More");
  let next = null;
  const load = async () => {
    more.disabled = true;
    try {
      const answer = await get(route, { ...query, limit: PAGE_SIZE, next });
      rows.push(...(answer.items || []));
      next = answer.next;
      replace(slot, table(columns, rows, options));
      more.hidden = !next;
    } catch (error) {
      replace(slot, failure(error));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  load();
  return el("div", {}, slot, more);
}
