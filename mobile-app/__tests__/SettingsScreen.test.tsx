import { fireEvent, screen } from '@testing-library/react-native';

import { SettingsScreen } from '../src/screens/SettingsScreen';
import { fakeClient, renderWith } from '../test-utils/app';
import { fixture, mockFetch, responseOf } from '../test-utils/http';

async function setup(baseUrl = 'http://gw.test', apiKey = '') {
  const onSave = jest.fn(async () => undefined);
  await renderWith(fakeClient(), <SettingsScreen settings={{ baseUrl, apiKey, enrolKey: '' }} onSave={onSave} />);
  return onSave;
}

test('saves the address and keys as typed', async () => {
  const onSave = await setup('');
  await fireEvent.changeText(screen.getByLabelText('Gateway address'), 'https://gw.example.org');
  await fireEvent.changeText(screen.getByLabelText('API key'), 'secret-1');
  await fireEvent.press(screen.getByRole('button', { name: 'Save settings' }));
  expect(onSave).toHaveBeenCalledWith({ baseUrl: 'https://gw.example.org', apiKey: 'secret-1', enrolKey: '' });
  await fireEvent.changeText(screen.getByLabelText('Enrol key (optional)'), 'enrol-1');
  await fireEvent.press(screen.getByRole('button', { name: 'Save settings' }));
  expect(onSave).toHaveBeenLastCalledWith({ baseUrl: 'https://gw.example.org', apiKey: 'secret-1', enrolKey: 'enrol-1' });
  expect(await screen.findByText('Saved.')).toBeTruthy();
});

test('connection check: ready', async () => {
  const calls = mockFetch(() => responseOf(fixture('readyz_200')));
  await setup('http://gw.test', 'k');
  await fireEvent.press(screen.getByRole('button', { name: 'Check connection' }));
  expect(calls[0].url).toBe('http://gw.test/readyz');
  expect((await screen.findByTestId('connection-result')).props.children.join('')).toBe(
    '✓ The gateway and the face search service are ready.',
  );
});

test('connection check: up but the ai-server is not ready', async () => {
  mockFetch(
    () =>
      new Response(JSON.stringify({ error: { code: 'not_ready', message: 'the ai-server is unavailable' }, request_id: 'r' }), {
        status: 503,
      }),
  );
  await setup('http://gw.test', 'k');
  await fireEvent.press(screen.getByRole('button', { name: 'Check connection' }));
  expect(await screen.findByText(/not ready: the ai-server is unavailable/)).toBeTruthy();
});

test('connection check: unreachable, and a missing key is pointed out', async () => {
  mockFetch(() => Promise.reject(new TypeError('Network request failed')));
  await setup('http://gw.test', 'k');
  await fireEvent.press(screen.getByRole('button', { name: 'Check connection' }));
  expect(await screen.findByText(/No connection to the gateway/)).toBeTruthy();

  mockFetch(() => responseOf(fixture('readyz_200')));
  await fireEvent.changeText(screen.getByLabelText('API key'), '');
  await fireEvent.press(screen.getByRole('button', { name: 'Check connection' }));
  expect(await screen.findByText(/No API key is set/)).toBeTruthy();
});

test('connection check: an address that is not a URL is caught before any request', async () => {
  const calls = mockFetch(() => responseOf(fixture('readyz_200')));
  await setup('gw.test', 'k');
  await fireEvent.press(screen.getByRole('button', { name: 'Check connection' }));
  expect(screen.getByText(/starting with http:\/\/ or https:\/\//)).toBeTruthy();
  expect(calls).toHaveLength(0);
});
