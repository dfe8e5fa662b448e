import { act, fireEvent, screen, within } from '@testing-library/react-native';

import { ApiError } from '../src/api/client';
import { fromMatch, fromSearch, type MatchResponse, type Results, type Search } from '../src/api/types';
import { ResultsView } from '../src/screens/ResultsView';
import { deferred, fakeClient, renderWith } from '../test-utils/app';
import { calibrated, storedBeforeMinConfidence } from '../test-utils/decisions';
import { body } from '../test-utils/http';

const match = fromMatch(body<MatchResponse>('match_200'));

test('the query image with the API key, and the heatmap toggle', async () => {
  const client = fakeClient();
  await renderWith(client, <ResultsView result={match} />);
  const query = screen.getByTestId('query-image');
  expect(query.props.source).toEqual({
    uri: `http://gateway.test${match.image_url}`,
    headers: { 'X-API-Key': 'k' },
  });
  expect(screen.queryByTestId('heatmap-image')).toBeNull();

  const toggle = screen.getByRole('switch', { name: 'Show heatmap' });
  expect(toggle).not.toBeChecked();
  await fireEvent.press(toggle);
  expect(screen.getByRole('switch', { name: 'Show heatmap' })).toBeChecked();
  expect(screen.getByTestId('heatmap-image').props.source.uri).toBe(`http://gateway.test${match.heatmap_url}`);
  expect(screen.queryByTestId('query-image')).toBeNull();
  await fireEvent.press(toggle);
  expect(screen.getByTestId('query-image')).toBeTruthy();
});

test('no heatmap stored: no toggle', async () => {
  await renderWith(fakeClient(), <ResultsView result={{ ...match, heatmap_url: null }} />);
  expect(screen.queryByRole('switch')).toBeNull();
});

test('each card: rank, name, thumbnail and similarity', async () => {
  await renderWith(fakeClient(), <ResultsView result={match} />);
  expect(screen.getAllByTestId(/^result-/)).toHaveLength(5);
  const first = match.matches[0];
  expect(screen.getByText(`1. ${first.name}`)).toBeTruthy();
  expect(screen.getAllByText(`Similarity ${first.similarity.toFixed(2)}`).length).toBeGreaterThan(0);
  expect(screen.getByLabelText(`Photo of ${first.name}`).props.source.uri).toBe(
    `http://gateway.test${first.thumbnail_url}`,
  );
});

test('feedback: sent for that person, confirmed, and the other button stays available', async () => {
  const client = fakeClient();
  const call = deferred<void>();
  client.sendFeedback.mockReturnValue(call.promise);
  await renderWith(client, <ResultsView result={match} />);
  await fireEvent.press(screen.getByRole('button', { name: `${match.matches[0].name} is the right person` }));
  expect(client.sendFeedback).toHaveBeenCalledWith(match.search_id, {
    person_id: match.matches[0].person_id,
    correct: true,
  });
  expect(screen.getByText('Sending feedback…')).toBeTruthy();
  await act(async () => call.resolve());
  expect(screen.getByText('Thanks: marked as the right person')).toBeTruthy();
  const chosen = screen.getByRole('button', { name: `${match.matches[0].name} is the right person` });
  expect(chosen).toBeSelected();
  const other = screen.getByRole('button', { name: `${match.matches[0].name} is not this person` });
  expect(other).not.toBeSelected();
  expect(other).toBeEnabled();
});

test('feedback that fails says so on that card', async () => {
  const client = fakeClient();
  client.sendFeedback.mockRejectedValue(new ApiError('network_error', 'x'));
  await renderWith(client, <ResultsView result={match} />);
  await fireEvent.press(screen.getByRole('button', { name: `${match.matches[3].name} is not this person` }));
  expect(await screen.findByText('Feedback not sent: No connection to the gateway')).toBeTruthy();
});

test('a reopened search shows the feedback already given', async () => {
  const stored = fromSearch(body<{ search: Search }>('search_200').search);
  await renderWith(fakeClient(), <ResultsView result={stored} />);
  const first = stored.matches[0].name!;
  expect(screen.getByRole('button', { name: `${first} is the right person` })).toBeSelected();
  expect(screen.getByText('Thanks: marked as the right person')).toBeTruthy();
});

test('a deleted person is shown as such', async () => {
  const deleted = { ...match.matches[0], name: null, thumbnail_url: null, deleted: true };
  await renderWith(fakeClient(), <ResultsView result={{ ...match, matches: [deleted] }} />);
  expect(screen.getByText('1. Deleted person')).toBeTruthy();
});

// The banner, the words, the percentage and the bar on the screen, in each way a search is decided.

/** Each card's words, as shown and as read out, and whether it has a filled bar. */
function cards() {
  return screen.queryAllByTestId(/^result-/).map((card) => ({
    bar: within(card).queryAllByTestId('confidence-fill').length > 0,
    card,
  }));
}

function expectNoMatchScreen(result: Results) {
  expect(screen.getByTestId('no-match')).toHaveTextContent(/^No reliable match/);
  expect(screen.getByTestId('no-match').props.accessibilityRole).toBe('alert');
  expect(screen.queryByText(/^Top \d+ people$/)).toBeNull();
  for (const { card, bar } of cards()) {
    expect(card).not.toHaveTextContent(/Likely|Possible|%/);
    expect(within(card).getByLabelText('Not a reliable match')).toHaveTextContent('Not a reliable match');
    expect(bar).toBe(false);
  }
  expect(cards()).toHaveLength(result.matches.length);
}

test('calibrated match: likely and possible with their percentage and bar, the rest not a match', async () => {
  const result = fromMatch(calibrated([0.97, 0.62, 0.3, 0.05, 0.01], { name: 'Jane Doe' }));
  await renderWith(fakeClient(), <ResultsView result={result} />);
  expect(screen.queryByTestId('no-match')).toBeNull();
  expect(screen.getByTestId('results-heading')).toHaveTextContent('Top 5 people');
  const [first, second, third, ...rest] = cards();
  expect(first.card).toHaveTextContent(/Likely the person · 97%/);
  expect(within(first.card).getByLabelText('Likely the person, 97 percent')).toBeTruthy();
  expect(within(first.card).getByTestId('confidence-fill')).toHaveStyle({ width: '97%' });
  expect(second.card).toHaveTextContent(/Possible match · 62%/);
  expect(within(second.card).getByLabelText('Possible match, 62 percent')).toBeTruthy();
  expect(within(second.card).getByTestId('confidence-fill')).toHaveStyle({ width: '62%' });
  for (const other of [third, ...rest]) {
    expect(other.card).toHaveTextContent(/Not a reliable match/);
    expect(other.card).not.toHaveTextContent(/Likely|Possible|%/); // 0.3 is not "30%"
    expect(other.bar).toBe(false);
  }
});

test('calibrated no-match, the reported case: the banner and "Closest people — not a match", no 30%', async () => {
  const result = fromMatch(calibrated([0.3, 0.2, 0.1, 0.05, 0.01], { name: 'Jane Doe' }));
  expect(result.no_match).toBe(true);
  await renderWith(fakeClient(), <ResultsView result={result} />);
  expect(screen.getByTestId('no-match')).toHaveTextContent(/none of them is a match/);
  expect(screen.getByRole('header')).toHaveTextContent('Closest people — not a match');
  expect(screen.getByText('1. Jane Doe')).toBeTruthy();
  expectNoMatchScreen(result);
  expect(screen.queryByText(/30%/)).toBeNull();
});

test('no_match true wins even where the numbers would pass the level', async () => {
  const result = fromMatch(calibrated([0.3, 0.97], { minConfidence: 0.25, noMatch: true }));
  await renderWith(fakeClient(), <ResultsView result={result} />);
  expectNoMatchScreen(result);
});

test('no-match without people: the banner alone, and "gallery empty" only when nobody is enrolled', async () => {
  const recorded = fromMatch(body<MatchResponse>('match_200_no_match'));
  const withheld = { ...recorded, matches: [] };
  expect(withheld.gallery_persons).toBeGreaterThan(0);
  const view = await renderWith(fakeClient(), <ResultsView result={withheld} />);
  expect(screen.getByTestId('no-match')).toHaveTextContent(
    'No reliable matchNobody in the gallery is a reliable match for this face.',
  );
  expect(screen.queryByRole('header')).toBeNull();
  expect(screen.queryAllByTestId(/^result-/)).toHaveLength(0);
  expect(screen.queryByText(/gallery is empty/)).toBeNull();

  await view.rerender(
    <ResultsView result={{ ...withheld, gallery_persons: 0 }} />,
  );
  expect(screen.getByText('The gallery is empty: nobody is enrolled yet.')).toBeTruthy();
});

test('no search calibration (the recorded answer): similarity against the threshold, no percentage or bar', async () => {
  expect(match.min_confidence).toBeNull();
  await renderWith(fakeClient(), <ResultsView result={match} />);
  expect(screen.queryByTestId('no-match')).toBeNull();
  expect(screen.getByTestId('results-heading')).toHaveTextContent(`Top ${match.matches.length} people`);
  cards().forEach(({ card, bar }, i) => {
    const words = match.matches[i].similarity >= match.threshold! ? 'Possible match' : 'Not a reliable match';
    expect(within(card).getByLabelText(words)).toHaveTextContent(words);
    expect(card).not.toHaveTextContent(/Likely|%/);
    expect(bar).toBe(false);
  });
  expect(within(cards()[0].card).getByLabelText('Possible match')).toBeTruthy();
});

test('the recorded no-match answer (a search key): the banner and nobody', async () => {
  const result = fromMatch(body<MatchResponse>('match_200_no_match'));
  expect(result.no_match).toBe(true);
  expect(result.matches).toEqual([]); // the gateway shows a search key no one below the level
  await renderWith(fakeClient(), <ResultsView result={result} />);
  expect(screen.queryByText('Closest people — not a match')).toBeNull();
  expectNoMatchScreen(result);
});

test('a no-match answer with the closest people (an enrol key, or an operator who allows it)', async () => {
  const recorded = body<MatchResponse>('match_200');
  const result = fromMatch({ ...recorded, no_match: true, threshold: 0.99 });
  await renderWith(fakeClient(), <ResultsView result={result} />);
  expect(screen.getByRole('header')).toHaveTextContent('Closest people — not a match');
  expectNoMatchScreen(result);
});

test('a search stored before min_confidence: neither its 65% nor its 95% is shown', async () => {
  const [noMatch, matched] = storedBeforeMinConfidence().searches.map(fromSearch);
  expect(noMatch.no_match).toBe(true);
  expect(noMatch.matches[0].confidence).toBeGreaterThan(0.6); // "Possible · 65%" under the banner before
  const view = await renderWith(fakeClient(), <ResultsView result={noMatch} />);
  expectNoMatchScreen(noMatch);

  await view.rerender(<ResultsView result={matched} />);
  expect(screen.queryByTestId('no-match')).toBeNull();
  const [first, ...rest] = cards();
  expect(within(first.card).getByLabelText('Possible match')).toBeTruthy();
  expect(first.card).not.toHaveTextContent(/Likely|%/);
  for (const other of rest) expect(other.card).toHaveTextContent(/Not a reliable match/);
});

test('a model with neither a search calibration nor a threshold: nobody is presented as a match', async () => {
  const undecided = { ...match, threshold: null, min_confidence: null };
  expect(undecided.no_match).toBe(false); // what the service answers for such a model
  await renderWith(fakeClient(), <ResultsView result={undecided} />);
  expect(screen.getByRole('header')).toHaveTextContent('Closest people — not a match');
  expectNoMatchScreen(undecided);
});
